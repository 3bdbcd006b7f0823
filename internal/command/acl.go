package command

import "fmt"

// ACL users: ACL SETUSER and ACL DELUSER go through the log, so that
// every node knows the same users (keyspace/users.go holds them). The
// Redis front end checks the rules before proposing them and hashes
// passwords (">pass" travels as "#sha256"), so no password is ever in the
// log; the keyspace keeps each user's rules, and every node's front end
// builds the user from them. The ops change no key.
//
// A restricted user's transaction that runs a script starts with
// OpACLAs, naming the user and its rules: the commands the script calls
// are checked against them (by the CallBuilder, which knows the command
// table), on every node alike.

var aclOps = []opRow{
	{op: OpACLSetUser, name: "acl-setuser", flags: opWrite, args: argShape{1, 1}, check: checkACLSetUser, exec: execACLSetUser},
	{op: OpACLDelUser, name: "acl-deluser", flags: opWrite, args: argShape{1, 1}, exec: execACLDelUser},
	// Changes nothing itself: Apply reads it (see Header.scriptUser).
	{op: OpACLAs, name: "acl-as", args: argShape{1, 1}, exec: func(env, *Cmd) Result { return resOK }},
}

func checkACLSetUser(c *Cmd) error {
	if c.N < 0 || c.N > int64(len(c.Args)-1) {
		return fmt.Errorf("acl-setuser with %d seed rules of %d", c.N, len(c.Args)-1)
	}
	return nil
}

func execACLSetUser(v env, c *Cmd) Result {
	seed := c.Args[1 : 1+c.N]
	v.ks.SetUser(string(c.Args[0]), seed, c.Args[1+c.N:])
	return resOK
}

func execACLDelUser(v env, c *Cmd) Result {
	var n int64
	for _, name := range c.Args {
		if v.ks.DeleteUser(string(name)) {
			n++
		}
	}
	return resInt(n)
}
