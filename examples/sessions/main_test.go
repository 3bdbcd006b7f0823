package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// proc is one process of the example application.
type proc struct {
	cmd              *exec.Cmd
	http, peer, node string
	dir              string
}

func start(t *testing.T, bin, dir, peerAddr string, join ...string) *proc {
	t.Helper()
	args := []string{"--http", "127.0.0.1:0", "--data-dir", dir, "--peer-addr", peerAddr}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, dir: dir}
	t.Cleanup(func() { p.kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("process did not start: %v", err)
	}
	if _, err := fmt.Sscanf(line, "sessions: http=%s peer=%s node=%s", &p.http, &p.peer, &p.node); err != nil {
		t.Fatalf("start line %q: %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		_ = p.cmd.Wait()
	}
}

// roundRobin is a load balancer in front of the processes: each request
// goes to the next one; a process that refuses the connection is skipped
// (as a balancer's passive health check does), which is safe to retry
// because the request never reached it. A request cut off inside a
// process is answered 502: its outcome is unknown. (Go's transport replays
// a GET whose connection died before an answer — on the same address, so
// it is refused and would then go to the next process: the increments are
// POSTs, which are never replayed.)
type roundRobin struct {
	mu       sync.Mutex
	backends []string
	next     int
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.mu.Lock()
	backends, first := rr.backends, rr.next
	rr.next++
	rr.mu.Unlock()
	for i := range backends {
		b := backends[(first+i)%len(backends)]
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+b+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			if strings.Contains(err.Error(), "connection refused") {
				continue
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no backend", http.StatusBadGateway)
}

// TestThreeProcessesSurviveAKill runs the example as three processes
// behind a round-robin balancer, with users counting through it, kills
// the process that leads the group with SIGKILL, and checks that no user
// was logged out and that every acknowledged increment is counted.
func TestThreeProcessesSurviveAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three processes")
	}
	bin := filepath.Join(t.TempDir(), "sessions")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	p1 := start(t, bin, t.TempDir(), "127.0.0.1:0")
	procs := []*proc{p1, start(t, bin, t.TempDir(), "127.0.0.1:0", p1.peer), start(t, bin, t.TempDir(), "127.0.0.1:0", p1.peer)}
	rr := &roundRobin{}
	for _, p := range procs {
		rr.backends = append(rr.backends, p.http)
	}
	lb := httptest.NewServer(rr)
	defer lb.Close()

	type user struct {
		name           string
		c              *http.Client
		acked, unknown int
		loggedOut      error
	}
	users := make([]*user, 4)
	for i := range users {
		jar, _ := cookiejar.New(nil)
		users[i] = &user{name: fmt.Sprintf("user%d", i), c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
		if body, code := post(users[i].c, lb.URL+"/login?user="+users[i].name); code != 200 {
			t.Fatalf("login: %d %s", code, body)
		}
	}

	var stop atomic.Bool
	var lastOK atomic.Int64 // unix nanos of the last acknowledged increment
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0 // the counter in the last acknowledged reply
			for !stop.Load() {
				body, code := post(u.c, lb.URL+"/incr")
				switch code {
				case 200:
					var n int
					if _, err := fmt.Sscanf(body, u.name+" %d", &n); err != nil {
						u.loggedOut = fmt.Errorf("reply %q", body)
						return
					}
					u.acked++
					// Each acknowledged increment counts on top of every
					// one before it; one of unknown outcome may count too.
					if n <= last || n > u.acked+u.unknown {
						u.loggedOut = fmt.Errorf("counter %d after %d (%d acknowledged, %d unknown): the session went back in time or counted twice", n, last, u.acked, u.unknown)
						return
					}
					last = n
					lastOK.Store(time.Now().UnixNano())
				case http.StatusUnauthorized:
					u.loggedOut = fmt.Errorf("logged out: %s", body)
					return
				default:
					u.unknown++ // cut off inside the killed process, or no leader yet
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)

	// Kill the leader.
	leader := -1
	for i, p := range procs {
		if body, _ := get(http.DefaultClient, "http://"+p.http+"/status"); strings.Contains(body, "leader="+p.node+"\n") {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no process leads")
	}
	killed := time.Now()
	procs[leader].kill()
	var servedAgain time.Duration
	deadline := time.Now().Add(20 * time.Second)
	for servedAgain == 0 && time.Now().Before(deadline) {
		if ok := lastOK.Load(); ok > killed.Add(50*time.Millisecond).UnixNano() {
			servedAgain = time.Unix(0, ok).Sub(killed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if servedAgain == 0 {
		t.Fatal("no increment acknowledged within 20s of the kill")
	}
	t.Logf("leader killed; increments acknowledged again after %v", servedAgain)
	time.Sleep(time.Second)

	// The killed process restarts with its data dir and catches up.
	rr.mu.Lock()
	restarted := start(t, bin, procs[leader].dir, procs[leader].peer)
	rr.backends[leader] = restarted.http
	rr.mu.Unlock()
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	for _, u := range users {
		if u.loggedOut != nil {
			t.Fatalf("%s: %v", u.name, u.loggedOut)
		}
		// Read the final count on every process, the restarted one too.
		var counts []string
		for _, p := range []*proc{procs[(leader+1)%3], procs[(leader+2)%3], restarted} {
			// The cookie jar sends the user's cookie to every port of 127.0.0.1.
			body, code := get(u.c, "http://"+p.http+"/")
			if code != 200 {
				t.Fatalf("%s on %s: %d %s", u.name, p.http, code, body)
			}
			counts = append(counts, body)
		}
		var n int
		if _, err := fmt.Sscanf(counts[0], u.name+" %d", &n); err != nil {
			t.Fatalf("%s: page %q: logged out?", u.name, counts[0])
		}
		if n < u.acked || n > u.acked+u.unknown {
			t.Fatalf("%s: counter %d, but %d increments were acknowledged and %d had unknown outcomes", u.name, n, u.acked, u.unknown)
		}
		if counts[1] != counts[0] || counts[2] != counts[0] {
			t.Fatalf("%s: the processes disagree: %q", u.name, counts)
		}
		t.Logf("%s: %d acknowledged, %d unknown, counter %d", u.name, u.acked, u.unknown, n)
	}
}

func post(c *http.Client, url string) (string, int) {
	resp, err := c.Post(url, "text/plain", nil)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func get(c *http.Client, url string) (string, int) {
	resp, err := c.Get(url)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}
