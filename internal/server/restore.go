package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/hatcheck/hatcheck/internal/command"
	"github.com/hatcheck/hatcheck/internal/config"
	"github.com/hatcheck/hatcheck/internal/rdb"
)

// RestoreOptions are `hatcheck restore`'s settings.
type RestoreOptions struct {
	NodeID    string // default: generated
	Databases int    // default 16; the file's databases must fit
	// SkipUnsupported skips what hatcheck does not hold (modules'
	// values and data, streams' consumer groups; see rdb.ReadOptions),
	// counting it in RestoreStats.Skipped, instead of failing.
	SkipUnsupported bool
	Logger          *slog.Logger
}

// RestoreStats says what a restore did.
type RestoreStats struct {
	Keys      int            // restored
	Libraries int            // function libraries restored
	Expired   int            // already expired when restored: left out
	Skipped   map[string]int // by kind, as rdb.ReadStats names them
}

// restoreBatch bounds one log entry of a restore.
const (
	restoreBatchCmds  = 512
	restoreBatchBytes = 1 << 20
)

// Restore seeds a new cluster of one node in dataDir (which must not exist
// or be empty) from an RDB file: a hatcheck backup or a file redis-server
// saved. Keys already expired are left out. Start a node on the data dir
// afterwards (at any peer address: a cluster of one records its own) and
// join others to it.
func Restore(ctx context.Context, dataDir string, r io.Reader, opts RestoreOptions) (RestoreStats, error) {
	st := RestoreStats{Skipped: map[string]int{}}
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return st, fmt.Errorf("restore: data dir %s is not empty: a restore seeds a new cluster in a new data dir", dataDir)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.NodeID = dataDir, opts.NodeID
	cfg.RedisAddr, cfg.MemcacheAddr, cfg.HTTPAddr, cfg.PeerAddr = "", "", "", "127.0.0.1:0"
	if opts.Databases > 0 {
		cfg.Databases = opts.Databases
	}
	s, err := Start(cfg, opts.Logger)
	if err != nil {
		return st, fmt.Errorf("restore: %w", err)
	}
	for !s.node.Ready() {
		select {
		case <-ctx.Done():
			_ = s.Abort()
			return st, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	var tx command.Tx
	size := 0
	flush := func() error {
		if len(tx) == 0 {
			return nil
		}
		res, err := s.node.Write(ctx, tx)
		if err == nil {
			err = res.Err
		}
		for i, r := range res.Results {
			if err == nil && r.Kind == command.KindError {
				if tx[i].Op == command.OpFunction {
					err = fmt.Errorf("function library: %w", r.Err)
				} else {
					err = fmt.Errorf("key %q: %w", tx[i].Key, r.Err)
				}
			}
		}
		tx, size = tx[:0], 0
		return err
	}
	now := time.Now().UnixMilli()
	// Function libraries are loaded as FUNCTION LOAD loads them, in the
	// first entries (redis's files hold them before the keys).
	library := func(code []byte) error {
		tx = append(tx, command.Cmd{Op: command.OpFunction, Args: [][]byte{[]byte("load"), nil, code}})
		size += len(code)
		st.Libraries++
		if len(tx) >= restoreBatchCmds || size >= restoreBatchBytes {
			return flush()
		}
		return nil
	}
	rst, err := rdb.ReadWith(r, rdb.ReadOptions{SkipUnsupported: opts.SkipUnsupported, Library: library}, func(rec *rdb.Record) error {
		if rec.ExpireAt != 0 && rec.ExpireAt <= now {
			st.Expired++
			return nil
		}
		if rec.DB >= cfg.Databases {
			return fmt.Errorf("key %q is in database %d: restore with more databases (--databases)", rec.Key, rec.DB)
		}
		cmds, ok := restoreCmds(rec)
		if !ok {
			if !opts.SkipUnsupported {
				return fmt.Errorf("key %q is a %s, which hatcheck does not hold yet (--skip-unsupported leaves such keys out)", rec.Key, rec.Type)
			}
			st.Skipped[rec.Type.String()]++
			return nil
		}
		for _, c := range cmds {
			tx = append(tx, c)
			size += len(c.Key)
			for _, a := range c.Args {
				size += len(a)
			}
		}
		st.Keys++
		if len(tx) >= restoreBatchCmds || size >= restoreBatchBytes {
			return flush()
		}
		return nil
	})
	for k, n := range rst.Skipped {
		st.Skipped[k] += n
	}
	if errors.Is(err, rdb.ErrUnsupported) && !opts.SkipUnsupported {
		err = fmt.Errorf("%w (--skip-unsupported restores the rest and counts what it leaves out)", err)
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		_ = s.Abort()
		return st, errors.Join(fmt.Errorf("restore: %w", err), os.RemoveAll(dataDir))
	}
	return st, s.Close()
}

// restoreCmds are the writes that recreate one key.
func restoreCmds(rec *rdb.Record) ([]command.Cmd, bool) {
	db := uint8(rec.DB)
	var c command.Cmd
	switch rec.Type {
	case rdb.String:
		// A memcached store keeps the item's client flags, and takes an
		// absolute expiry.
		c = command.Cmd{Op: command.OpMCStore, DB: db, Key: rec.Key, Args: [][]byte{rec.Str}, ClientFlags: rec.Flags}
		if rec.ExpireAt != 0 {
			c.Flags, c.N = command.FlagExpireAbs, rec.ExpireAt
		}
		return []command.Cmd{c}, true
	case rdb.Hash:
		c = command.Cmd{Op: command.OpHSet, DB: db, Key: rec.Key, Args: rec.Pairs}
	case rdb.Set:
		c = command.Cmd{Op: command.OpSAdd, DB: db, Key: rec.Key, Args: rec.Elems}
	case rdb.List:
		c = command.Cmd{Op: command.OpLPush, DB: db, Key: rec.Key, Args: rec.Elems} // without FlagLeft: RPUSH, in order
	case rdb.Stream:
		// A stream, its bookkeeping too, is one RESTORE of its payload
		// (with the absolute expiry, which RESTORE sets itself).
		p, err := rdb.EncodeDump(rec)
		if err != nil {
			return nil, false
		}
		c = command.Cmd{Op: command.OpRestore, DB: db, Key: rec.Key, Args: [][]byte{p}}
		if rec.ExpireAt != 0 {
			c.Flags, c.N = command.FlagExpireAbs, rec.ExpireAt
		}
		return []command.Cmd{c}, true
	case rdb.ZSet:
		// ZADD of score, member pairs; the shortest decimal that parses
		// back to the same double, so scores survive exactly.
		args := make([][]byte, 0, 2*len(rec.Members))
		for i, m := range rec.Members {
			args = append(args, strconv.AppendFloat(nil, rec.Scores[i], 'g', -1, 64), m)
		}
		c = command.Cmd{Op: command.OpZAdd, DB: db, Key: rec.Key, Args: args}
	default:
		return nil, false
	}
	cmds := []command.Cmd{c}
	if rec.ExpireAt != 0 {
		cmds = append(cmds, command.Cmd{Op: command.OpExpire, DB: db, Key: rec.Key, N: rec.ExpireAt, Flags: command.FlagExpireAbs})
	}
	return cmds, true
}
