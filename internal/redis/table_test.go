package redis

import (
	"slices"
	"strings"
	"testing"
)

func TestTableRefusesDuplicates(t *testing.T) {
	tb := newTable()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "registered twice") {
			t.Fatalf("a command registered twice: %v", r)
		}
	}()
	tb.add(&cmdSpec{name: "get", arity: 2, run: func(*conn, [][]byte) {}})
}

// The hot path looks every request's command up: that must not allocate.
func TestLookupDoesNotAllocate(t *testing.T) {
	tb := newTable()
	name := []byte("HGetAll")
	if n := testing.AllocsPerRun(100, func() {
		if tb.lookup(name) == nil {
			t.Fatal("HGETALL not found")
		}
	}); n != 0 {
		t.Fatalf("lookup allocates %v times", n)
	}
}

func TestFlagAndCategoryNames(t *testing.T) {
	if len(flagNames) != 16 || 1<<len(flagNames) > int(flagNoQueue) {
		t.Fatalf("%d flag names for redis's flags, below hatcheck's own", len(flagNames))
	}
	if 1<<(len(aclNames)-1) != int(aclScripting) {
		t.Fatalf("%d ACL category names", len(aclNames))
	}
}

// Data commands agree with the op they build: a command redis calls
// read-only never builds a write, and every key-taking command says where
// its keys are.
func TestDataCommandsAgreeWithTheirOps(t *testing.T) {
	tb := newTable()
	c := &conn{srv: &Server{cfg: scriptLimits, cmds: tb}}
	for _, name := range tb.names {
		s := tb.byName[name]
		if !s.data {
			continue
		}
		args := [][]byte{[]byte(name)}
		for len(args) < max(s.arity, -s.arity) {
			args = append(args, []byte("1"))
		}
		cmd, msg := s.build(c, args)
		if msg != "" {
			continue
		}
		if s.flags&flagReadOnly != 0 && cmd.Op.IsWrite() {
			t.Errorf("%s is read-only but builds a write", name)
		}
		if cmd.Key != nil && s.keys.first != 1 {
			t.Errorf("%s builds a keyed command but reports no first key", name)
		}
	}
}

// TestBlockingCommandsAreTheBlockingRows: the list the dashboard's load
// meter leaves out of latency is exactly the rows flagged blocking, and
// WAIT and WAITAOF (see TestBlockingCommandsWaitForReplicas).
func TestBlockingCommandsAreTheBlockingRows(t *testing.T) {
	var want []string
	t2 := newTable()
	for name, s := range t2.byName {
		if s.flags&flagBlocking != 0 || slices.Contains(waitForReplicas, name) {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	got := BlockingCommands()
	if !slices.Equal(got, want) || len(got) == 0 {
		t.Fatalf("BlockingCommands() = %v, want the blocking rows %v", got, want)
	}
	if !slices.Contains(got, "blpop") || slices.Contains(got, "lpop") {
		t.Fatalf("BlockingCommands() = %v", got)
	}
}

// TestBlockingCommandsWaitForReplicas: WAIT waits for replicas up to its
// timeout by design, but redis's table (and so COMMAND INFO) does not flag
// it blocking; the load meter leaves it out of latency all the same, as
// its hand-kept list did.
func TestBlockingCommandsWaitForReplicas(t *testing.T) {
	t2 := newTable()
	for _, name := range waitForReplicas {
		if t2.byName[name] == nil {
			t2.add(&cmdSpec{name: name, arity: 3, flags: flagNoScript, run: func(*conn, [][]byte) {}}) // as on a branch that has it
		}
	}
	got := t2.waiting()
	for _, name := range waitForReplicas {
		if !slices.Contains(got, name) {
			t.Fatalf("waiting() = %v, without %s", got, name)
		}
	}
}
