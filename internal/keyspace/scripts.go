package keyspace

import "maps"

// Scripts are the EVAL script cache: SHA1 (40 lower-case hex digits) →
// body. It is replicated state like the keys (EVAL and SCRIPT LOAD store
// through the log, snapshots carry it), so EVALSHA finds the same scripts
// on every node and after every restart.

// Script returns the body cached under sha.
func (ks *Keyspace) Script(sha string) ([]byte, bool) {
	b, ok := ks.scripts[sha]
	return b, ok
}

// StoreScript caches body under sha. Bodies are never modified afterwards.
func (ks *Keyspace) StoreScript(sha string, body []byte) {
	if ks.scripts == nil {
		ks.scripts = map[string][]byte{}
	}
	if _, ok := ks.scripts[sha]; !ok {
		ks.scripts[sha] = body
	}
}

// FlushScripts empties the script cache.
func (ks *Keyspace) FlushScripts() { ks.scripts = nil }

// ScriptCount is the number of cached scripts.
func (ks *Keyspace) ScriptCount() int { return len(ks.scripts) }

func (ks *Keyspace) scriptsView() map[string][]byte { return maps.Clone(ks.scripts) }
