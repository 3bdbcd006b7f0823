package redis

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
)

// ACL users as redis 7.0 has them (acl.go holds the ACL command): a user
// is on or off, has passwords (SHA-256 hashes, as redis keeps them) or
// nopass, key patterns (~ %R~ %W~), channel patterns (&) and a set of
// allowed commands. The allowed commands are a bitmap by the command's
// index in the table, so that the check on the hot path is one bit test,
// and no test at all for a user that may run everything on every key and
// channel (the default user). Selectors — rules in parentheses — are not
// supported.
//
// A user is built by applying rules, as ACL SETUSER gives them, one after
// the other (apply). The replicated state (package keyspace) holds each
// user's rules in order; every node builds the same user from them with
// its own table (compileUser).

// Key permission bits of a key pattern.
const (
	permRead  uint8 = 1
	permWrite uint8 = 2
	permAll         = permRead | permWrite
)

type keyPattern struct {
	pat  string
	perm uint8
}

// sanitize-payload flags (accepted and reported; hatcheck's RESTORE does
// not depend on them).
const (
	sanitizeNone = iota
	sanitizeSkip
	sanitizeOn
)

// aclUser is one user. A compiled user is never modified: a change builds
// a new one (clone, then apply).
type aclUser struct {
	name        string
	on          bool
	nopass      bool
	sanitize    int
	passwords   []string // lower-case hex SHA-256, in the order added
	allKeys     bool
	keys        []keyPattern
	allChannels bool
	channels    []string
	future      bool     // +@all or allcommands was the last word on every command ("future commands")
	allCmds     bool     // every bit set since the last +@all (redis's ALLCOMMANDS flag)
	cmds        []uint64 // allowed commands, by cmdSpec.id
	firstArgs   map[int][]string
	cmdRules    []string // since the last +@all or -@all, for describeCommands
	rules       [][]byte // what compileUser built it from (scripts run as the user: OpACLAs)
	// free: every command, key and channel is allowed; no check at all.
	free bool
}

// aclError is redis's reason for refusing a rule (ACLSetUserStringError).
type aclError string

const (
	aclErrSyntax       aclError = "Syntax error"
	aclErrUnknown      aclError = "Unknown command or category name in ACL"
	aclErrKeysAfterAll aclError = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
	aclErrChanAfterAll aclError = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
	aclErrNoSuchPass   aclError = "The password you are trying to remove from the user does not exist"
	aclErrBadHash      aclError = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	aclErrSubFirstArg  aclError = "Allowing first-arg of a subcommand is not supported"
)

// newUser is a user as ACL SETUSER creates it: off, no passwords, no
// keys, no channels (acl-pubsub-default resetchannels), no commands.
func newUser(t *table, name string) *aclUser {
	return &aclUser{name: name, cmds: make([]uint64, (t.aclBits+63)/64)}
}

func (u *aclUser) clone() *aclUser {
	v := *u
	v.passwords = slices.Clone(u.passwords)
	v.keys = slices.Clone(u.keys)
	v.channels = slices.Clone(u.channels)
	v.cmds = slices.Clone(u.cmds)
	v.cmdRules = slices.Clone(u.cmdRules)
	if u.firstArgs != nil {
		v.firstArgs = make(map[int][]string, len(u.firstArgs))
		for id, a := range u.firstArgs {
			v.firstArgs[id] = slices.Clone(a)
		}
	}
	return &v
}

// hashPassword is the password's SHA-256 in lower-case hex, as ACL LIST
// shows it.
func hashPassword(p []byte) string {
	h := sha256.Sum256(p)
	return hex.EncodeToString(h[:])
}

func validHash(h []byte) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// hasSpaces is redis's ACLStringHasSpaces: a space or a NUL byte.
func hasSpaces(b []byte) bool {
	for _, c := range b {
		if c == 0 || c == ' ' || ('\t' <= c && c <= '\r') {
			return true
		}
	}
	return false
}

// checkPassword reports whether pass is one of the user's passwords (any
// is, for a nopass user), comparing hashes in constant time.
func (u *aclUser) checkPassword(pass []byte) bool {
	if u.nopass {
		return true
	}
	h := []byte(hashPassword(pass))
	ok := false
	for _, p := range u.passwords {
		if subtle.ConstantTimeCompare(h, []byte(p)) == 1 {
			ok = true
		}
	}
	return ok
}

func (u *aclUser) setBit(id int, on bool) {
	if on {
		u.cmds[id/64] |= 1 << (id % 64)
	} else {
		u.cmds[id/64] &^= 1 << (id % 64)
		u.allCmds = false
	}
	delete(u.firstArgs, id)
}

// setCommand allows or denies a command, and all its subcommands.
func (u *aclUser) setCommand(t *table, s *cmdSpec, on bool) {
	u.setBit(s.id, on)
	for _, sub := range t.subsOf[s.id] {
		u.setBit(sub.id, on)
	}
}

func (u *aclUser) bit(id int) bool { return u.cmds[id/64]&(1<<(id%64)) != 0 }

func (u *aclUser) setAll(on bool) {
	for i := range u.cmds {
		u.cmds[i] = 0
		if on {
			u.cmds[i] = ^uint64(0)
		}
	}
	u.future, u.allCmds, u.firstArgs, u.cmdRules = on, on, nil, nil
}

// categoryByName finds an ACL category by its name without the @.
func categoryByName(name string) (aclCats, bool) {
	for i, n := range aclNames {
		if strings.EqualFold(n[1:], name) {
			return aclCats(1) << i, true
		}
	}
	return 0, false
}

// apply applies one rule, as redis's ACLSetUser does; on an error the user
// may be half changed (apply rules to a clone).
func (u *aclUser) apply(t *table, rule []byte) aclError {
	op := string(rule)
	is := func(s string) bool { return strings.EqualFold(op, s) }
	switch {
	case len(rule) == 0:
	case is("on"):
		u.on = true
	case is("off"):
		u.on = false
	case is("skip-sanitize-payload"):
		u.sanitize = sanitizeSkip
	case is("sanitize-payload"):
		u.sanitize = sanitizeOn
	case is("nopass"):
		u.nopass, u.passwords = true, nil
	case is("resetpass"):
		u.nopass, u.passwords = false, nil
	case rule[0] == '>' || rule[0] == '#':
		var h string
		if rule[0] == '>' {
			h = hashPassword(rule[1:])
		} else {
			if !validHash(rule[1:]) {
				return aclErrBadHash
			}
			h = string(rule[1:])
		}
		if !slices.Contains(u.passwords, h) {
			u.passwords = append(u.passwords, h)
		}
		u.nopass = false
	case rule[0] == '<' || rule[0] == '!':
		var h string
		if rule[0] == '<' {
			h = hashPassword(rule[1:])
		} else {
			if !validHash(rule[1:]) {
				return aclErrBadHash
			}
			h = string(rule[1:])
		}
		i := slices.Index(u.passwords, h)
		if i < 0 {
			return aclErrNoSuchPass
		}
		u.passwords = slices.Delete(u.passwords, i, i+1)
	case rule[0] == '(':
		// Selectors are not supported.
		return aclErrSyntax
	case is("clearselectors"):
		// A user has no selectors: nothing to clear.
	case is("reset"):
		u.nopass, u.passwords = false, nil
		u.allKeys, u.keys = false, nil
		u.allChannels, u.channels = false, nil
		u.on = false
		u.sanitize = sanitizeOn
		u.setAll(false)
	default:
		return u.applySelector(t, op)
	}
	return ""
}

// applySelector applies a rule about keys, channels or commands.
func (u *aclUser) applySelector(t *table, op string) aclError {
	is := func(s string) bool { return strings.EqualFold(op, s) }
	switch {
	case is("allkeys") || op == "~*":
		u.allKeys, u.keys = true, nil
	case is("resetkeys"):
		u.allKeys, u.keys = false, nil
	case is("allchannels") || op == "&*":
		u.allChannels, u.channels = true, nil
	case is("resetchannels"):
		u.allChannels, u.channels = false, nil
	case is("allcommands") || is("+@all"):
		u.setAll(true)
	case is("nocommands") || is("-@all"):
		u.setAll(false)
	case op[0] == '~' || op[0] == '%':
		if u.allKeys {
			return aclErrKeysAfterAll
		}
		perm, off := permAll, 1
		if op[0] == '%' {
			perm = 0
			for ; off < len(op); off++ {
				c := op[off]
				switch {
				case (c == 'R' || c == 'r') && perm&permRead == 0:
					perm |= permRead
				case (c == 'W' || c == 'w') && perm&permWrite == 0:
					perm |= permWrite
				case c == '~':
					off++
					goto done
				default:
					return aclErrSyntax
				}
			}
		done:
			if perm == 0 {
				return aclErrSyntax
			}
		}
		pat := op[off:]
		if hasSpaces([]byte(pat)) {
			return aclErrSyntax
		}
		if i := slices.IndexFunc(u.keys, func(k keyPattern) bool { return k.pat == pat }); i >= 0 {
			u.keys[i].perm |= perm
		} else {
			u.keys = append(u.keys, keyPattern{pat, perm})
		}
		u.allKeys = false
	case op[0] == '&':
		if u.allChannels {
			return aclErrChanAfterAll
		}
		pat := op[1:]
		if hasSpaces([]byte(pat)) {
			return aclErrSyntax
		}
		if !slices.Contains(u.channels, pat) {
			u.channels = append(u.channels, pat)
		}
		u.allChannels = false
	case len(op) > 1 && (op[0] == '+' || op[0] == '-') && op[1] == '@':
		cat, ok := categoryByName(op[2:])
		if !ok {
			return aclErrUnknown
		}
		for _, s := range t.specs {
			if s.categories()&cat != 0 {
				u.setBit(s.id, op[0] == '+')
			}
			for _, sub := range t.subsOf[s.id] {
				if sub.categories()&cat != 0 {
					u.setBit(sub.id, op[0] == '+')
				}
			}
		}
		u.addCmdRule(op[:1] + strings.ToLower(op[1:]))
	case op[0] == '+':
		name, sub, hasSub := strings.Cut(op[1:], "|")
		if i := strings.LastIndexByte(op[1:], '|'); i >= 0 {
			name, sub = op[1:1+i], op[2+i:]
		}
		name = strings.ToLower(name)
		s := t.byName[name]
		if s == nil {
			if t.subs[name] != nil {
				return aclErrSubFirstArg
			}
			return aclErrUnknown
		}
		if !hasSub {
			u.setCommand(t, s, true)
			u.addCmdRule("+" + s.name)
			return ""
		}
		if sub == "" {
			return aclErrSyntax
		}
		sub = strings.ToLower(sub)
		if t.subsOf[s.id] != nil {
			ss := t.subs[name+"|"+sub]
			if ss == nil {
				return aclErrUnknown
			}
			u.setBit(ss.id, true)
			u.addCmdRule("+" + ss.name)
			return ""
		}
		// A first argument (SELECT|0) of a command without subcommands.
		if u.firstArgs == nil {
			u.firstArgs = map[int][]string{}
		}
		if !slices.Contains(u.firstArgs[s.id], sub) {
			u.firstArgs[s.id] = append(u.firstArgs[s.id], sub)
		}
		u.addCmdRule("+" + s.name + "|" + sub)
	case op[0] == '-':
		name := strings.ToLower(op[1:])
		if ss := t.subs[name]; ss != nil {
			u.setBit(ss.id, false)
			u.addCmdRule("-" + ss.name)
			return ""
		}
		s := t.byName[name]
		if s == nil {
			return aclErrUnknown
		}
		u.setCommand(t, s, false)
		u.addCmdRule("-" + s.name)
	default:
		return aclErrSyntax
	}
	return ""
}

// finish computes what the checks read.
func (u *aclUser) finish() *aclUser {
	u.free = u.allCmds && u.allKeys && u.allChannels
	return u
}

// compileUser builds a user from the rules the replicated state holds for
// it. A rule that fails (it passed when it was proposed, but a change
// applied before it made it fail) is skipped.
func compileUser(t *table, name string, rules [][]byte) *aclUser {
	u := newUser(t, name)
	for _, r := range rules {
		v := u.clone()
		if v.apply(t, r) == "" {
			u = v
		}
	}
	u.rules = rules
	return u.finish()
}

// setUser applies rules to a copy of u (a new user if u is nil) and
// returns it, or redis's error for the first rule that fails.
func setUser(t *table, u *aclUser, name string, rules [][]byte) (*aclUser, string) {
	if u == nil {
		u = newUser(t, name)
	} else {
		u = u.clone()
	}
	for _, r := range rules {
		if e := u.apply(t, r); e != "" {
			return nil, "ERR Error in ACL SETUSER modifier '" + string(r) + "': " + string(e)
		}
	}
	return u.finish(), ""
}

// describe is the user as ACL LIST shows it, after "user NAME ".
func (u *aclUser) describe(t *table) string {
	var b strings.Builder
	if u.on {
		b.WriteString("on ")
	} else {
		b.WriteString("off ")
	}
	if u.nopass {
		b.WriteString("nopass ")
	}
	switch u.sanitize {
	case sanitizeSkip:
		b.WriteString("skip-sanitize-payload ")
	case sanitizeOn:
		b.WriteString("sanitize-payload ")
	}
	for _, p := range u.passwords {
		b.WriteString("#" + p + " ")
	}
	if u.allKeys {
		b.WriteString("~* ")
	} else {
		for _, k := range u.keys {
			b.WriteString(k.String() + " ")
		}
	}
	if u.allChannels {
		b.WriteString("&* ")
	} else {
		b.WriteString("resetchannels ")
		for _, c := range u.channels {
			b.WriteString("&" + c + " ")
		}
	}
	b.WriteString(u.describeCommands(t))
	return b.String()
}

func (k keyPattern) String() string {
	switch k.perm {
	case permRead:
		return "%R~" + k.pat
	case permWrite:
		return "%W~" + k.pat
	}
	return "~" + k.pat
}

// keysString and channelsString are ACL GETUSER's keys and channels.
func (u *aclUser) keysString() string {
	if u.allKeys {
		return "~*"
	}
	s := make([]string, len(u.keys))
	for i, k := range u.keys {
		s[i] = k.String()
	}
	return strings.Join(s, " ")
}

func (u *aclUser) channelsString() string {
	if u.allChannels {
		return "&*"
	}
	s := make([]string, len(u.channels))
	for i, c := range u.channels {
		s[i] = "&" + c
	}
	return strings.Join(s, " ")
}

// describeCommands is the user's command rules as ACL LIST shows them:
// +@all or -@all (whichever was the last word on every command), then the
// category and command rules given since, in order, a rule replacing an
// earlier one about the same command or category. redis-server 7.0
// instead fits categories to the bitmap of its own, larger, command table
// (ACLDescribeSelectorCommandRules), which on hatcheck's table would give
// odd results; for rules as people write them ("+@all -@dangerous",
// "-@all +get") both read the same. The bitmap they give is the same.
//
// A rule that changes nothing (-select after -@all) is left out, as the
// bitmap redis describes does not show it either.
func (u *aclUser) describeCommands(t *table) string {
	start := "-@all"
	if u.future {
		start = "+@all"
	}
	rules := slices.Clone(u.cmdRules)
	for i := 0; i < len(rules); {
		without := slices.Delete(slices.Clone(rules), i, i+1)
		if u.sameCommands(t, start, without) {
			rules = without
		} else {
			i++
		}
	}
	if len(rules) == 0 {
		return start
	}
	return start + " " + strings.Join(rules, " ")
}

// sameCommands reports whether start and rules allow what u allows.
func (u *aclUser) sameCommands(t *table, start string, rules []string) bool {
	v := newUser(t, "")
	v.apply(t, []byte(start))
	for _, r := range rules {
		v.apply(t, []byte(r))
	}
	if !slices.Equal(v.cmds, u.cmds) || len(v.firstArgs) != len(u.firstArgs) {
		return false
	}
	for id, a := range u.firstArgs {
		if !slices.Equal(a, v.firstArgs[id]) {
			return false
		}
	}
	return true
}

// addCmdRule records a command rule for describeCommands, in place of an
// earlier rule about the same command or category.
func (u *aclUser) addCmdRule(rule string) {
	target := rule[1:]
	u.cmdRules = slices.DeleteFunc(u.cmdRules, func(r string) bool { return r[1:] == target })
	u.cmdRules = append(u.cmdRules, rule)
}

// Results of a permission check, in redis's order of precedence.
const (
	aclOK = iota
	aclDeniedCmd
	aclDeniedKey
	aclDeniedAuth
	aclDeniedChannel
)

// canRun checks a request (args[0] is the command) against the user; on
// a refusal pos is the argument at fault (a key or a channel). The
// subcommand of a container command is checked by its own bit; denied
// names the command (or subcommand) refused.
func (u *aclUser) canRun(t *table, s *cmdSpec, args [][]byte) (result, pos int, denied string) {
	if u.free {
		return aclOK, 0, ""
	}
	if !u.allCmds && s.flags&flagNoAuth == 0 {
		id, name := s.id, s.name
		if subs := t.subsOf[s.id]; subs != nil {
			if len(args) < 2 {
				return aclOK, 0, "" // the command's own error follows
			}
			// A subcommand redis 7.0 does not have (CLIENT SETINFO, or
			// none at all) is checked by the container's own bit.
			if ss := t.subs[s.name+"|"+strings.ToLower(string(args[1]))]; ss != nil {
				id, name = ss.id, ss.name
			}
		}
		if !u.bit(id) {
			fa, ok := u.firstArgs[id]
			if !ok || len(args) < 2 || !slices.ContainsFunc(fa, func(a string) bool { return strings.EqualFold(a, string(args[1])) }) {
				return aclDeniedCmd, 0, name
			}
		}
	}
	if !u.allKeys && s.hasKeys() {
		need := permRead
		if s.flags&flagWrite != 0 {
			need = permWrite
		}
		keys, _ := s.keysIn(args)
		for _, k := range keys {
			if !u.keyAllowed(k, need) {
				return aclDeniedKey, argIndex(args, k), ""
			}
		}
	}
	if !u.allChannels {
		if chans, pattern := channelsOf(s, args); chans != nil {
			for i, ch := range chans {
				if !u.channelAllowed(ch, pattern) {
					return aclDeniedChannel, i + 1, ""
				}
			}
		}
	}
	return aclOK, 0, ""
}

// argIndex finds the argument k (a slice of args) by identity.
func argIndex(args [][]byte, k []byte) int {
	for i, a := range args {
		if len(a) > 0 && len(k) > 0 && &a[0] == &k[0] {
			return i
		}
	}
	return 0
}

func (u *aclUser) keyAllowed(k []byte, need uint8) bool {
	for _, p := range u.keys {
		if p.perm&need == need && command.Match([]byte(p.pat), k) {
			return true
		}
	}
	return false
}

// channelAllowed: a channel must match one of the user's patterns; a
// pattern (PSUBSCRIBE) must be one of them, literally.
func (u *aclUser) channelAllowed(ch []byte, pattern bool) bool {
	for _, p := range u.channels {
		if pattern && p == string(ch) || !pattern && command.Match([]byte(p), ch) {
			return true
		}
	}
	return false
}

// channelsOf returns the channels a pub/sub command names (from
// args[1] on) and whether they are patterns; nil for other commands.
func channelsOf(s *cmdSpec, args [][]byte) ([][]byte, bool) {
	switch s.name {
	case "subscribe":
		return args[1:], false
	case "psubscribe":
		return args[1:], true
	case "publish":
		return args[1:2], false
	}
	return nil, false
}
