package cluster

import (
	"slices"
	"testing"

	"github.com/hatcheck/hatcheck/internal/command"
)

// writeKeys names every database-0 key a write may change — across
// databases too (COPY … DB 0, MOVE into 0) — and falls back to "every
// key" for what it cannot name; a key it missed would be served stale
// from a near-cache.
func TestWriteKeysNamesWhatAWriteChanges(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	cases := []struct {
		name string
		cmd  command.Cmd
		keys []string
		all  bool
	}{
		{"SET", command.Cmd{Op: command.OpSet, Key: b("k"), Args: [][]byte{b("v")}}, []string{"k"}, false},
		{"SET in db 1", command.Cmd{Op: command.OpSet, DB: 1, Key: b("k"), Args: [][]byte{b("v")}}, nil, false},
		{"COPY db 1 to db 0", command.Cmd{Op: command.OpCopy, DB: 1, Key: b("src"), N: 0, Args: [][]byte{b("dst"), b("")}}, []string{"dst"}, false},
		{"COPY db 0 to db 2", command.Cmd{Op: command.OpCopy, Key: b("src"), N: 2, Args: [][]byte{b("dst"), b("")}}, nil, false},
		{"MOVE db 3 to db 0", command.Cmd{Op: command.OpMove, DB: 3, Key: b("k"), N: 0}, []string{"k"}, false},
		{"MOVE db 0 to db 3", command.Cmd{Op: command.OpMove, Key: b("k"), N: 3}, []string{"k"}, false},
		{"LMOVE", command.Cmd{Op: command.OpLMove, Key: b("src"), Args: [][]byte{b("dst")}}, []string{"src", "dst"}, false},
		{"SMOVE", command.Cmd{Op: command.OpSMove, Key: b("src"), Args: [][]byte{b("dst"), b("m")}}, []string{"src", "dst"}, false},
		{"SUNIONSTORE", command.Cmd{Op: command.OpSUnionStore, Key: b("dst"), Args: [][]byte{b("a"), b("b")}}, []string{"dst"}, false},
		{"LPUSH", command.Cmd{Op: command.OpLPush, Key: b("l"), Args: [][]byte{b("x")}}, []string{"l"}, false},
		{"ZUNIONSTORE", command.Cmd{Op: command.OpZUnionStore, Key: b("dst"), N: 2, Args: [][]byte{b("a"), b("b")}}, []string{"dst"}, false},
		{"XADD", command.Cmd{Op: command.OpXAdd, Key: b("s"), Args: [][]byte{b("*"), b("f"), b("v")}}, []string{"s"}, false},
		{"XTRIM", command.Cmd{Op: command.OpXTrim, Key: b("s"), Args: [][]byte{b("MAXLEN"), b("1")}}, []string{"s"}, false},
		{"XDEL", command.Cmd{Op: command.OpXDel, Key: b("s"), Args: [][]byte{b("1-1")}}, []string{"s"}, false},
		{"XSETID", command.Cmd{Op: command.OpXSetID, Key: b("s"), Args: [][]byte{b("9-9")}}, []string{"s"}, false},
		{"ZMPOP", command.Cmd{Op: command.OpZMPop, Args: [][]byte{b("a")}}, nil, true},
		{"LMPOP", command.Cmd{Op: command.OpLMPop, Args: [][]byte{b("a"), b("b")}}, nil, true},
		{"FCALL", command.Cmd{Op: command.OpFCall, Args: [][]byte{b("f")}}, nil, true},
		{"RESTORE", command.Cmd{Op: command.OpRestore, Key: b("k"), Args: [][]byte{b("payload")}}, []string{"k"}, false},
		{"RESTORE in db 1", command.Cmd{Op: command.OpRestore, DB: 1, Key: b("k"), Args: [][]byte{b("payload")}}, nil, false},
		{"SORT … STORE", command.Cmd{Op: command.OpSortStore, Key: b("dst"), Args: [][]byte{b("src"), b("w_*"), b("0"), b("-1"), b("g_*")}}, []string{"dst"}, false},
		{"SWAPDB 0 3", command.Cmd{Op: command.OpSwapDB, N: 3}, nil, true},
		{"SWAPDB 3 0", command.Cmd{Op: command.OpSwapDB, DB: 3, N: 0}, nil, true},
		{"SWAPDB 2 3", command.Cmd{Op: command.OpSwapDB, DB: 2, N: 3}, nil, false},
		{"FLUSHALL", command.Cmd{Op: command.OpFlushAll}, nil, true},
		{"mg N (meta get)", command.Cmd{Op: command.OpMCMetaGet, Key: b("k"), Args: [][]byte{b("30"), b(""), b("N")}}, []string{"k"}, false},
		{"md I", command.Cmd{Op: command.OpMCInvalidate, Key: b("k")}, []string{"k"}, false},
		{"ms I", command.Cmd{Op: command.OpMCStoreStale, Key: b("k"), Args: [][]byte{b("v")}, CAS: 1}, []string{"k"}, false},
		{"ACL SETUSER", command.Cmd{Op: command.OpACLSetUser, Args: [][]byte{b("app1"), b("on")}}, nil, false},
		{"ACL DELUSER", command.Cmd{Op: command.OpACLDelUser, Args: [][]byte{b("app1")}}, nil, false},
		{"GET (a read)", command.Cmd{Op: command.OpGet, Key: b("k")}, nil, false},
	}
	for _, tc := range cases {
		var keys []string
		all := false
		writeKeys(command.Tx{tc.cmd}, func(k []byte) { keys = append(keys, string(k)) }, func() { all = true })
		if all != tc.all || (!all && !slices.Equal(keys, tc.keys)) {
			t.Errorf("%s: keys %q, all %v; want %q, %v", tc.name, keys, all, tc.keys, tc.all)
		}
	}
	// Every write op is either named here or falls to "every key".
	for o := command.Op(1); int(o) < command.Ops(); o++ {
		if !o.Valid() || !o.IsWrite() {
			continue
		}
		called := false
		writeKeys(command.Tx{{Op: o, Key: b("k"), Args: [][]byte{b("a"), b("b")}}}, func([]byte) { called = true }, func() { called = true })
		if !called && o != command.OpScriptLoad && o != command.OpScriptFlush && o != command.OpPublish && o != command.OpWatchCheck && o != command.OpFunction &&
			o != command.OpACLSetUser && o != command.OpACLDelUser {
			t.Errorf("write op %d names no key and does not fall back to every key", o)
		}
	}
}
