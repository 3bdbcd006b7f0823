package cluster

import (
	"context"
	"io"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/keyspace"
	"github.com/hatcheck/hatcheck/internal/rdb"
)

// Backup writes every key to w as an RDB file that redis-server loads and
// `hatcheck restore` seeds a new cluster from. The backup holds every write
// acknowledged before Backup was called, on any node (a read barrier
// first, as for any read), and is one consistent state: a view of the
// keyspace between two applied entries, encoded while writes go on. Keys
// already expired are left out. The function libraries come first, as in
// redis's files. It returns how many keys it wrote.
func (n *Node) Backup(ctx context.Context, w io.Writer) (int, error) {
	if _, err := n.Read(ctx, &command.Cmd{Op: command.OpDBSize}); err != nil {
		return 0, err
	}
	var v *keyspace.View
	n.fsm.read(func(ks *keyspace.Keyspace) { v = ks.View() })
	defer v.Release()
	out := rdb.NewWriter(w, "hatcheck-node", n.id)
	keys := 0
	var err error
	for _, l := range v.Libraries() {
		if err = out.WriteLibrary(l.Code); err != nil {
			return 0, err
		}
	}
	v.Each(time.Now().UnixMilli(), func(db int, key []byte, e *keyspace.Entry) bool {
		r := command.RecordOf(e)
		r.DB, r.Key, r.ExpireAt, r.Flags = db, key, e.ExpireAt, e.Flags
		if err = out.Write(r); err != nil {
			return false
		}
		keys++
		return ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = out.Close()
	}
	return keys, err
}
