package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func parseAll(t *testing.T, in string, lim Limits) ([][]string, error) {
	t.Helper()
	buf := []byte(in)
	var out [][]string
	for len(buf) > 0 {
		args, n, err := Parse(buf, lim, nil)
		if err != nil {
			return out, err
		}
		var s []string
		for _, a := range args {
			s = append(s, string(a))
		}
		if len(s) > 0 {
			out = append(out, s)
		}
		buf = buf[n:]
	}
	return out, nil
}

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want string // commands joined by "|", args by ","
		err  string
	}{
		{in: "*1\r\n$4\r\nPING\r\n", want: "PING"},
		{in: "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", want: "SET,k,"},
		{in: "*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n", want: "ECHO,a\r\nb"},
		{in: "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", want: "PING"},
		{in: "PING\r\nset a b\n", want: "PING|set,a,b"},
		{in: "\r\n\r\nPING\r\n", want: "PING"},
		{in: `SET "a b" 'c d' "\x41\n"` + "\r\n", want: "SET,a b,c d,A\n"},
		{in: `ECHO ""` + "\r\n", want: "ECHO,"},
		{in: "*1\r\n$4\r\nPINGxx", err: "Protocol error: invalid bulk length"},
		{in: "*x\r\n", err: "Protocol error: invalid multibulk length"},
		{in: "*2000000\r\n", err: "Protocol error: invalid multibulk length"},
		{in: "*1\r\n+PING\r\n", err: "Protocol error: expected '$', got '+'"},
		{in: "*1\r\n$-5\r\n", err: "Protocol error: invalid bulk length"},
		{in: "*1\r\n$99999999999\r\n", err: "Protocol error: invalid bulk length"},
		{in: "SET \"a\r\n", err: "Protocol error: unbalanced quotes in request"},
		{in: "SET \"a\"b\r\n", err: "Protocol error: unbalanced quotes in request"},
	}
	for _, c := range cases {
		got, err := parseAll(t, c.in, DefaultLimits())
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		var parts []string
		for _, cmd := range got {
			parts = append(parts, strings.Join(cmd, ","))
		}
		if s := strings.Join(parts, "|"); s != c.want {
			t.Errorf("%q: got %q, want %q", c.in, s, c.want)
		}
	}
}

func TestParseIncompleteAtEveryPrefix(t *testing.T) {
	full := "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"
	for i := 0; i < len(full); i++ {
		_, _, err := Parse([]byte(full[:i]), DefaultLimits(), nil)
		if !errors.Is(err, ErrIncomplete) {
			t.Fatalf("prefix %d: err %v, want ErrIncomplete", i, err)
		}
	}
	args, n, err := Parse([]byte(full), DefaultLimits(), nil)
	if err != nil || n != len(full) || len(args) != 3 || string(args[2]) != "value" {
		t.Fatalf("full: %q %d %v", args, n, err)
	}
}

func TestLimits(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxInline = 16
	if _, _, err := Parse([]byte(strings.Repeat("a", 17)), lim, nil); err == nil || err.Error() != "Protocol error: too big inline request" {
		t.Errorf("inline without newline: %v", err)
	}
	if _, _, err := Parse([]byte(strings.Repeat("a", 20)+"\r\n"), lim, nil); err == nil || err.Error() != "Protocol error: too big inline request" {
		t.Errorf("long inline: %v", err)
	}
	lim = DefaultLimits()
	lim.MaxBulk = 10
	if _, _, err := Parse([]byte("*1\r\n$11\r\n"), lim, nil); err == nil || err.Error() != "Protocol error: invalid bulk length" {
		t.Errorf("max bulk: %v", err)
	}
	lim = DefaultLimits()
	lim.MaxMultibulk = 3
	if _, _, err := Parse([]byte("*4\r\n"), lim, nil); err == nil || err.Error() != "Protocol error: invalid multibulk length" {
		t.Errorf("max multibulk: %v", err)
	}
	lim = DefaultLimits()
	lim.Unauthenticated = true
	if _, _, err := Parse([]byte("*11\r\n"), lim, nil); err == nil || err.Error() != "Protocol error: unauthenticated multibulk length" {
		t.Errorf("unauth multibulk: %v", err)
	}
	if _, _, err := Parse([]byte("*1\r\n$16385\r\n"), lim, nil); err == nil || err.Error() != "Protocol error: unauthenticated bulk length" {
		t.Errorf("unauth bulk: %v", err)
	}
	if _, _, err := Parse([]byte("*2\r\n$4\r\nAUTH\r\n$16384\r\n"), lim, nil); !errors.Is(err, ErrIncomplete) {
		t.Errorf("unauth bulk at the limit: %v", err)
	}
}

func TestAppend(t *testing.T) {
	var b []byte
	b = AppendSimple(b, "OK")
	b = AppendError(b, "ERR bad\r\nthing")
	b = AppendInt(b, -42)
	b = AppendBulk(b, []byte("hi"))
	b = AppendBulkString(b, "")
	b = AppendNull(b)
	b = AppendNullArray(b)
	b = AppendArray(b, 2)
	want := "+OK\r\n-ERR bad  thing\r\n:-42\r\n$2\r\nhi\r\n$0\r\n\r\n$-1\r\n*-1\r\n*2\r\n"
	if !bytes.Equal(b, []byte(want)) {
		t.Fatalf("got %q, want %q", b, want)
	}
}

// ReadReply reads back every reply the encoders write, one at a time.
func TestReadReply(t *testing.T) {
	var b []byte
	b = AppendSimple(b, "OK")
	b = AppendNull(b)
	b = AppendNull3(b)
	b = AppendMap(b, 1)
	b = AppendBulkString(b, "k")
	b = AppendSet(b, 2)
	b = AppendInt(b, 1)
	b = AppendVerbatim(b, "txt", "a\r\nb")
	b = AppendPush(b, 2)
	b = AppendBulkString(b, "invalidate")
	b = AppendNullArray(b)
	b = AppendError(b, "ERR x")
	r := bufio.NewReader(bytes.NewReader(b))
	var got []string
	for {
		reply, err := ReadReply(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(reply))
	}
	want := []string{"+OK\r\n", "$-1\r\n", "_\r\n", "%1\r\n$1\r\nk\r\n~2\r\n:1\r\n=8\r\ntxt:a\r\nb\r\n",
		">2\r\n$10\r\ninvalidate\r\n*-1\r\n", "-ERR x\r\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestAppendRESP3(t *testing.T) {
	var b []byte
	b = AppendNull3(b)
	b = AppendMap(b, 1)
	b = AppendSet(b, 0)
	b = AppendPush(b, 3)
	b = AppendVerbatim(b, "txt", "a\r\nb")
	want := "_\r\n%1\r\n~0\r\n>3\r\n=8\r\ntxt:a\r\nb\r\n"
	if !bytes.Equal(b, []byte(want)) {
		t.Fatalf("got %q, want %q", b, want)
	}
}

func BenchmarkParseSet(b *testing.B) {
	req := []byte("*5\r\n$3\r\nSET\r\n$49\r\nPHPREDIS_SESSION:0123456789abcdef0123456789abcdef\r\n$1024\r\n" +
		strings.Repeat("v", 1024) + "\r\n$2\r\nEX\r\n$4\r\n1440\r\n")
	lim := DefaultLimits()
	args := make([][]byte, 0, 8)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		args, _, err = Parse(req, lim, args)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendBulk(b *testing.B) {
	v := bytes.Repeat([]byte("v"), 1024)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendBulk(buf[:0], v)
	}
}
