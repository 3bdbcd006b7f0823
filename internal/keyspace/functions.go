package keyspace

import (
	"maps"
	"slices"
	"strings"
)

// Libraries are the Redis 7 function libraries (FUNCTION LOAD): library
// name → code, and the names of the functions the code registers. Like
// the script cache they are replicated state — loaded through the log,
// carried by snapshots — so FCALL finds the same functions on every node.
// The keyspace cannot run Lua: the command package works out a library's
// functions when it is loaded and stores them with it.

// Library is one loaded library. It is never modified once stored.
type Library struct {
	Name      string
	Code      []byte
	Functions []string // sorted
}

// Library returns the library named name.
func (ks *Keyspace) Library(name string) (*Library, bool) {
	l, ok := ks.libraries[name]
	return l, ok
}

// FunctionLibrary returns the library that registers function fn.
// Function names are case-insensitive, as in redis.
func (ks *Keyspace) FunctionLibrary(fn string) (*Library, bool) {
	l, ok := ks.functions[strings.ToLower(fn)]
	return l, ok
}

// StoreLibrary adds lib, replacing the library of the same name. The
// caller has checked that no other library registers its functions.
func (ks *Keyspace) StoreLibrary(lib *Library) {
	ks.DeleteLibrary(lib.Name)
	if ks.libraries == nil {
		ks.libraries, ks.functions = map[string]*Library{}, map[string]*Library{}
	}
	ks.libraries[lib.Name] = lib
	for _, fn := range lib.Functions {
		ks.functions[strings.ToLower(fn)] = lib
	}
}

// DeleteLibrary removes the library named name and reports whether there
// was one.
func (ks *Keyspace) DeleteLibrary(name string) bool {
	l, ok := ks.libraries[name]
	if !ok {
		return false
	}
	delete(ks.libraries, name)
	for _, fn := range l.Functions {
		delete(ks.functions, strings.ToLower(fn))
	}
	return true
}

// FlushLibraries removes every library.
func (ks *Keyspace) FlushLibraries() { ks.libraries, ks.functions = nil, nil }

// Libraries returns the libraries sorted by name.
func (ks *Keyspace) Libraries() []*Library {
	out := make([]*Library, 0, len(ks.libraries))
	for _, name := range slices.Sorted(maps.Keys(ks.libraries)) {
		out = append(out, ks.libraries[name])
	}
	return out
}

// FunctionCount is the number of functions of all libraries.
func (ks *Keyspace) FunctionCount() int { return len(ks.functions) }
