package command

import (
	"strconv"

	"github.com/hatcheck/hatcheck/internal/keyspace"
)

// Transactions: WATCH reads each key's state (OpWatchState); EXEC sends an
// OpWatchCheck per watched key ahead of the queued commands, and Apply's
// guard aborts the whole transaction if any key changed, on every node
// alike.
var transactionOps = []opRow{
	{op: OpWatchState, name: "watch", flags: opItem, args: argShape{1, 1}, exec: execWatchState},
	{op: OpWatchCheck, name: "watch-check", flags: opWrite | opItem, args: argShape{1, 1}, guard: guardWatchCheck, exec: execWatchCheck},
}

// ErrWatchedKeyChanged aborts an EXEC whose WATCHed keys changed.
var ErrWatchedKeyChanged = ReplyError("EXECABORT watched key changed")

func guardWatchCheck(v env, c *Cmd) error {
	if watchState(v.ks, v.db, v.key, v.h.Now) != string(c.Args[0]) {
		return ErrWatchedKeyChanged
	}
	return nil
}

// execWatchCheck does nothing: the guard checked before anything ran.
func execWatchCheck(env, *Cmd) Result { return resOK }

func execWatchState(v env, c *Cmd) Result {
	arr := make([]Result, len(c.Args))
	for i, k := range c.Args {
		arr[i] = resBulk([]byte(watchState(v.ks, v.db, string(k), v.h.Now)))
	}
	return Result{Kind: KindArray, Array: arr}
}

// watchState identifies a key's current version for WATCH: empty when it
// does not exist (or has expired), else its CAS, which every change of
// value gives anew, and its expiry, which EXPIRE and PERSIST change.
func watchState(ks *keyspace.Keyspace, db int, key string, now int64) string {
	if db >= ks.Databases() {
		return ""
	}
	e := ks.Get(db, key, now)
	if e == nil {
		return ""
	}
	return strconv.FormatUint(e.CAS, 10) + "/" + strconv.FormatInt(e.ExpireAt, 10)
}
