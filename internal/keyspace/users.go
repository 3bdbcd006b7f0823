package keyspace

import (
	"bytes"
	"maps"
	"slices"
)

// Users are the ACL users (ACL SETUSER, ACL DELUSER): replicated state
// like the function libraries — changed through the log, carried by
// snapshots — so that every node knows the same users. The keyspace does
// not interpret the rules: it keeps each user's rules in the order they
// were given (passwords already hashed by the front end), and the Redis
// front end builds the user from them. A "reset" rule makes the rules
// before it irrelevant, so they are dropped.

// UserWatcher is an optional capability of an Events receiver: told every
// user's rules whenever they change (and when the receiver is set, or a
// snapshot replaces the keyspace). It must not block and must not keep
// the map's slices beyond the call unless it copies them (they are
// copies already; it may keep them).
type UserWatcher interface {
	UsersChanged(users map[string][][]byte)
}

// UserRules returns the rules of the user named name.
func (ks *Keyspace) UserRules(name string) ([][]byte, bool) {
	r, ok := ks.users[name]
	return r, ok
}

// SetUser appends rules to the user named name, creating it (with seed
// first) if it does not exist.
func (ks *Keyspace) SetUser(name string, seed, rules [][]byte) {
	if ks.users == nil {
		ks.users = map[string][][]byte{}
	}
	cur, ok := ks.users[name]
	if !ok {
		cur = cloneRules(seed)
	}
	cur = append(slices.Clone(cur), cloneRules(rules)...)
	for i := len(cur) - 1; i > 0; i-- {
		if bytes.EqualFold(cur[i], []byte("reset")) {
			cur = slices.Clone(cur[i:])
			break
		}
	}
	ks.users[name] = cur
	ks.notifyUsers()
}

// DeleteUser removes the user named name and reports whether there was one.
func (ks *Keyspace) DeleteUser(name string) bool {
	if _, ok := ks.users[name]; !ok {
		return false
	}
	delete(ks.users, name)
	ks.notifyUsers()
	return true
}

// Users returns a copy of every user's rules.
func (ks *Keyspace) Users() map[string][][]byte {
	out := make(map[string][][]byte, len(ks.users))
	for name, r := range ks.users {
		out[name] = cloneRules(r)
	}
	return out
}

// UserNames returns the users' names, sorted.
func (ks *Keyspace) UserNames() []string { return slices.Sorted(maps.Keys(ks.users)) }

func (ks *Keyspace) notifyUsers() {
	if w, ok := ks.events.(UserWatcher); ok {
		w.UsersChanged(ks.Users())
	}
}

func cloneRules(r [][]byte) [][]byte {
	out := make([][]byte, len(r))
	for i, b := range r {
		out[i] = bytes.Clone(b)
	}
	return out
}
