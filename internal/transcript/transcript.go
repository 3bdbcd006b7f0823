// Package transcript runs golden protocol transcripts in tests: a file of
// requests (NAME.txt) and a golden file (NAME.golden) holding the exact
// replies a reference server (redis-server, memcached) gave to each. The
// protocol packages supply how a request line is encoded and how a reply is
// read; this package owns the file formats, the comparison and starting the
// reference server.
//
// Request file syntax, one step per line:
//
//	#! name value          a directive for the whole transcript (e.g. requirepass)
//	#! single-node REASON  the whole file is replayed on a single node only
//	                       (a protocol's follower replay skips it, logging
//	                       REASON)
//	#! mask REGEXP         replies are compared with every match of REGEXP
//	                       blanked out: values that differ by nature (a
//	                       connection id), in both the golden file and the reply
//	#@ single-node REASON  the next request's reply is compared on a single
//	                       node only; replayed through a follower of a
//	                       cluster the request is sent but its reply, which
//	                       differs there by design (WAIT counts the replicas,
//	                       ROLE says slave), is not compared
//	# comment
//	sleep 1100ms           a pause (for expiry)
//	raw "..."              Go-quoted bytes sent exactly as they are
//	reconnect              go on with a new connection
//	read                   read one more reply without sending anything (a
//	                       request answered twice, a RESP3 push after a reply)
//	anything else          a request, encoded by the protocol's encoder
//
// Golden file syntax: for each request, "> " and its line, then the reply as
// one Go-quoted string.
package transcript

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Step is one line of a transcript.
type Step struct {
	Line      string        // the line as written
	Req       []byte        // bytes to send; nil for a pause or a reconnect
	Raw       bool          // Req came from a raw line
	Wait      time.Duration // pause length
	Reconnect bool          // close the connection and open a new one
	Read      bool          // read one more reply, sending nothing
	// SingleNode is the reason given by a "#@ single-node" line before
	// the step: its reply is compared on a single node only.
	SingleNode string
}

// Replied reports whether the step has a reply of its own in the golden
// file: a request, or a read.
func (s Step) Replied() bool { return s.Req != nil || s.Read }

// File is a parsed request file.
type File struct {
	Steps      []Step
	Directives map[string]string
}

// Parse reads a request file; encode turns a request line into bytes.
func Parse(src string, encode func(line string) ([]byte, error)) (File, error) {
	f := File{Directives: map[string]string{}}
	singleNode := ""
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimRight(line, "\r")
		fail := func(err error) (File, error) { return File{}, fmt.Errorf("line %d: %w", i+1, err) }
		n := len(f.Steps)
		switch {
		case strings.HasPrefix(line, "#@ single-node "):
			singleNode = strings.TrimPrefix(line, "#@ single-node ")
		case strings.HasPrefix(line, "#@ "):
			return fail(fmt.Errorf("unknown step marker %q", line))
		case strings.HasPrefix(line, "#! "):
			name, value, _ := strings.Cut(strings.TrimPrefix(line, "#! "), " ")
			f.Directives[name] = value
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
		case line == "reconnect":
			f.Steps = append(f.Steps, Step{Line: line, Reconnect: true})
		case line == "read":
			f.Steps = append(f.Steps, Step{Line: line, Read: true})
		case strings.HasPrefix(line, "sleep "):
			d, err := time.ParseDuration(strings.TrimPrefix(line, "sleep "))
			if err != nil {
				return fail(err)
			}
			f.Steps = append(f.Steps, Step{Line: line, Wait: d})
		case strings.HasPrefix(line, "raw "):
			b, err := strconv.Unquote(strings.TrimPrefix(line, "raw "))
			if err != nil {
				return fail(err)
			}
			f.Steps = append(f.Steps, Step{Line: line, Req: []byte(b), Raw: true})
		default:
			b, err := encode(line)
			if err != nil {
				return fail(err)
			}
			f.Steps = append(f.Steps, Step{Line: line, Req: b})
		}
		if len(f.Steps) > n && singleNode != "" {
			if !f.Steps[n].Replied() {
				return fail(errors.New("#@ single-node must come before a request"))
			}
			f.Steps[n].SingleNode, singleNode = singleNode, ""
		}
	}
	if singleNode != "" {
		return File{}, errors.New("#@ single-node at the end of the file")
	}
	return f, nil
}

// Load reads and parses a request file, failing the test on error.
func Load(t testing.TB, path string, encode func(line string) ([]byte, error)) File {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(string(src), encode)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

// FormatGolden renders the replies to steps (indexed like steps) as a
// golden file.
func FormatGolden(steps []Step, replies [][]byte) []byte {
	var b bytes.Buffer
	for i, s := range steps {
		if !s.Replied() {
			continue
		}
		fmt.Fprintf(&b, "> %s\n%s\n", s.Line, strconv.Quote(string(replies[i])))
	}
	return b.Bytes()
}

// WriteGolden writes the golden file for steps.
func WriteGolden(t testing.TB, path string, steps []Step, replies [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, FormatGolden(steps, replies), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadGolden reads the replies of a golden file, one per request.
func ReadGolden(t testing.TB, path string) [][]byte {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (record it with -update)", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(src), "\n"), "\n")
	var out [][]byte
	for i := 1; i < len(lines); i += 2 {
		s, err := strconv.Unquote(lines[i])
		if err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, []byte(s))
	}
	return out
}

// Compare reports every reply in got (indexed like steps) that differs from
// the golden replies in want (one per request).
func Compare(t testing.TB, who string, steps []Step, want, got [][]byte) {
	t.Helper()
	compare(t, who, steps, want, got, false)
}

func compare(t testing.TB, who string, steps []Step, want, got [][]byte, follower bool) {
	t.Helper()
	j := 0
	for i, s := range steps {
		if !s.Replied() {
			continue
		}
		if j >= len(want) {
			t.Fatalf("golden file has fewer replies than the transcript has requests; re-record with -update")
		}
		if !(follower && s.SingleNode != "") && !bytes.Equal(got[i], want[j]) {
			t.Errorf("%s: %s\n got: %q\nwant: %q", who, s.Line, got[i], want[j])
		}
		j++
	}
	if j != len(want) {
		t.Errorf("golden file has %d replies, the transcript %d requests; re-record with -update", len(want), j)
	}
}

// Player replays a transcript against one server and returns each step's
// reply (indexed like f.Steps).
type Player func(t *testing.T, f File) [][]byte

// Run replays every testdata/transcripts/*.txt as a parallel subtest. With
// update it records NAME.golden from reference; otherwise it compares
// hatcheck's replies with the golden file and, when reference is not nil
// (the real server is installed), the reference server's too, so that a
// golden file the real server no longer agrees with is caught.
func Run(t *testing.T, update bool, encode func(line string) ([]byte, error), hatcheck, reference Player) {
	files, _ := filepath.Glob("testdata/transcripts/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			t.Parallel()
			f := Load(t, path, encode)
			golden := strings.TrimSuffix(path, ".txt") + ".golden"
			if update {
				WriteGolden(t, golden, f.Steps, reference(t, f))
				return
			}
			Check(t, "hatcheck", f, golden, hatcheck(t, f))
			if reference != nil {
				Check(t, "reference server", f, golden, reference(t, f))
			}
		})
	}
}

// Check compares got (indexed like f.Steps) with the golden file's
// replies, both with f's mask applied.
func Check(t testing.TB, who string, f File, golden string, got [][]byte) {
	t.Helper()
	check(t, who, f, golden, got, false)
}

// CheckFollower is Check for replies got through a follower of a cluster:
// the steps marked "#@ single-node" are left out of the comparison.
func CheckFollower(t testing.TB, who string, f File, golden string, got [][]byte) {
	t.Helper()
	check(t, who, f, golden, got, true)
}

func check(t testing.TB, who string, f File, golden string, got [][]byte, follower bool) {
	t.Helper()
	mask := masker(t, f.Directives["mask"])
	compare(t, who, f.Steps, mask(ReadGolden(t, golden)), mask(got), follower)
}

// masker returns a function that blanks out every match of expr in
// replies (nothing if expr is empty).
func masker(t testing.TB, expr string) func([][]byte) [][]byte {
	t.Helper()
	if expr == "" {
		return func(r [][]byte) [][]byte { return r }
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		t.Fatalf("mask: %v", err)
	}
	return func(replies [][]byte) [][]byte {
		out := make([][]byte, len(replies))
		for i, r := range replies {
			out[i] = re.ReplaceAll(r, []byte("(masked)"))
		}
		return out
	}
}

// Reference finds the reference server's binary. In CI (CI set) a missing
// binary fails the test, so that the golden files are always re-checked
// against the real server there; elsewhere it returns "".
func Reference(t testing.TB, name, pkg string, update bool) string {
	t.Helper()
	bin, _ := exec.LookPath(name)
	switch {
	case bin == "" && update:
		t.Fatalf("-update needs %s on PATH (Debian package %s)", name, pkg)
	case bin == "" && os.Getenv("CI") != "":
		t.Fatalf("%s not installed; .ci/run must install %s so CI re-checks the golden files", name, pkg)
	case bin == "":
		t.Logf("%s not installed: replaying against hatcheck only", name)
	}
	return bin
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartServer runs bin with args, waits until addr accepts connections and
// kills the process when the test ends.
func StartServer(t testing.TB, addr, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 500; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t.Fatalf("%s did not start on %s: %s", bin, addr, stderr.String())
}
