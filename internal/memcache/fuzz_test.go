package memcache

import (
	"errors"
	"reflect"
	"testing"
)

// The fuzz targets feed each input whole and then cut at every position, as
// a connection receives it in pieces, and check that the parser never
// panics, never claims more bytes than it was given, and that any prefix
// either asks for more input or reaches exactly the result of the whole.

func FuzzParseText(f *testing.F) {
	for _, s := range []string{
		"get a b c\r\n",
		"set k 1 2 5\r\nhello\r\n",
		"cas k 0 0 1 99 noreply\r\nx\r\n",
		"set k 0 0 3\r\nhello\r\n",
		"set k 0 0 99999999\r\n",
		"incr n 18446744073709551615\r\n",
		"\r\n",
		"gat 10 a\n",
		"set k x 0 1\r\nx\r\n",
		"set k 0 0 4294967296\r\n\r\n",
		"ms k 3 T30 F5 c k O1 b\r\nabc\r\n",
		"ms Zm9v 2 b MA C12\r\nab\r\nmn\r\n",
		"ms k 3 v v\r\nabc\r\n",
		"ms k 999999\r\n",
		"ms k 2147483648\r\n",
		"mg k v c f s t k O9 q\r\nmn\r\n",
		"ma n N0 J5 D2 MD v\r\nmd n q C7\r\nme n\r\n",
		"GET / HTTP/1.0\r\n",
		"DELETE HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxItem = 64
		if len(in) > 3<<10 {
			// Every prefix is parsed: keep that quadratic work bounded.
			// 3 KB still covers the 2 KB line limit.
			return
		}
		want, wantN, wantErr := parseText(in, maxItem, nil)
		if wantN < 0 || wantN > len(in) {
			t.Fatalf("consumed %d of %d bytes", wantN, len(in))
		}
		if wantErr == nil && wantN == 0 {
			t.Fatalf("no error and no progress on %q", in)
		}
		for i := 0; i < len(in); i++ {
			got, n, err := parseText(in[:i], maxItem, nil)
			if errors.Is(err, errIncomplete) {
				continue
			}
			if !errors.Is(err, wantErr) || n != wantN || !reflect.DeepEqual(got, want) {
				t.Fatalf("prefix %d: %+v %d %v; whole: %+v %d %v", i, got, n, err, want, wantN, wantErr)
			}
		}
	})
}

func FuzzParseBinary(f *testing.F) {
	get := []byte("\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00k")
	set := []byte("\x80\x01\x00\x01\x08\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00kv")
	huge := []byte("\x80\x01\x00\x01\x08\x00\x00\x00\x7f\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00k")
	for _, s := range [][]byte{get, set, huge, append(get, set...), []byte("\x81"), []byte("\x80\x00\x00\x05\x06")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const maxBody = 128
		if len(in) > 3<<10 {
			return
		}
		want, wantN, wantLarge, wantErr := parseBinary(in, maxBody)
		if wantN < 0 || wantN > len(in) {
			t.Fatalf("consumed %d of %d bytes", wantN, len(in))
		}
		if wantErr == nil && wantN < headerLen {
			t.Fatalf("no error and only %d bytes used on %q", wantN, in)
		}
		if wantErr == nil && !wantLarge && len(want.extras)+len(want.key)+len(want.value) != want.bodyLen {
			t.Fatalf("parts do not add up to the body length: %+v", want)
		}
		for i := 0; i < len(in); i++ {
			got, n, large, err := parseBinary(in[:i], maxBody)
			if errors.Is(err, errIncomplete) {
				continue
			}
			if !errors.Is(err, wantErr) || n != wantN || large != wantLarge || !reflect.DeepEqual(got, want) {
				t.Fatalf("prefix %d: %+v %d %v %v; whole: %+v %d %v %v", i, got, n, large, err, want, wantN, wantLarge, wantErr)
			}
		}
	})
}

func BenchmarkParseText(b *testing.B) {
	req := []byte("set PHPREDIS_SESSION:0123456789abcdef0123456789abcdef 0 1440 1024\r\n" + string(make([]byte, 1024)) + "\r\n")
	toks := make([][]byte, 0, 8)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, n, err := parseText(req, 1<<20, toks); err != nil || n != len(req) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkParseTextGet(b *testing.B) {
	req := []byte("get memc.sess.key.0123456789abcdef0123456789abcdef\r\n")
	toks := make([][]byte, 0, 8)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if r, n, err := parseText(req, 1<<20, toks); err != nil || n != len(req) || r.cmd != "get" || len(r.args) != 1 {
			b.Fatal(r, n, err)
		}
	}
}

func BenchmarkParseBinary(b *testing.B) {
	key := "memc.sess.key.0123456789abcdef0123456789abcdef"
	req := make([]byte, 24+8+len(key)+1024)
	req[0], req[1], req[3], req[4] = magicRequest, opSet, byte(len(key)), 8
	req[8], req[9], req[10], req[11] = 0, 0, byte((8+len(key)+1024)>>8), byte(8+len(key)+1024)
	copy(req[32:], key)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, n, _, err := parseBinary(req, 1<<20); err != nil || n != len(req) {
			b.Fatal(n, err)
		}
	}
}
