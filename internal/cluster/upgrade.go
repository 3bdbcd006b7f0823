package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/hatcheck/hatcheck/internal/cluster/group"
	"github.com/hatcheck/hatcheck/internal/cluster/raftlog"
	"github.com/hatcheck/hatcheck/internal/command"
)

// Upgrading a data directory written by the releases that ran
// hashicorp/raft (raft/wal: raft-wal's log and stable store; raft/snapshots:
// hashicorp's file snapshot store) to this layout (raft/log, raft/snap).
// Open does it once, before it opens the new log:
//
//   - the newest old snapshot becomes a snapshot at the same index and
//     term (its keyspace data copied as it is; the member table and
//     ConfState from its configuration, which is committed);
//   - every old entry after it becomes an entry at the same index and term:
//     a command batch stays a command batch, a configuration becomes the
//     membership change from the configuration before it, anything else
//     (no-ops, barriers) an empty entry. Nothing is applied: which old
//     entries were committed is for Raft to settle, as it would have;
//   - term and vote carry over (the old vote names an address, mapped to
//     that member; if none matches, the term moves one up with no vote,
//     which can only cost an election);
//   - the new files are written beside the old ones under temporary names
//     and renamed into place, the log last; the old directories are then
//     renamed to wal.pre-etcd-raft and snapshots.pre-etcd-raft and left
//     for the operator to delete. A crash at any point leaves either the
//     old layout (converted again at the next start) or the new one.

// Stable-store keys of hashicorp/raft.
var (
	oldKeyCurrentTerm  = []byte("CurrentTerm")
	oldKeyLastVoteTerm = []byte("LastVoteTerm")
	oldKeyLastVoteCand = []byte("LastVoteCand")
)

func upgradeDataDir(raftDir string, databases int, log *slog.Logger) error {
	oldWAL := filepath.Join(raftDir, "wal")
	if _, err := os.Stat(oldWAL); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	newLog, newSnap := filepath.Join(raftDir, "log"), filepath.Join(raftDir, "snap")
	if _, err := os.Stat(newLog); err != nil {
		for _, d := range []string{newLog + ".tmp", newSnap + ".tmp", newSnap} {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
		log.Info("converting the data directory from the hashicorp/raft layout", "dir", raftDir)
		if err := convertOldLayout(raftDir, newLog+".tmp", newSnap+".tmp", databases, log); err != nil {
			return fmt.Errorf("convert the data directory of the previous release (%s): %w; the old files are untouched", raftDir, err)
		}
		if err := os.Rename(newSnap+".tmp", newSnap); err != nil {
			return err
		}
		if err := os.Rename(newLog+".tmp", newLog); err != nil {
			return err
		}
		if err := syncDir(raftDir); err != nil {
			return err
		}
	}
	for _, d := range []string{"wal", "snapshots"} {
		old := filepath.Join(raftDir, d)
		if _, err := os.Stat(old); err == nil {
			if err := os.Rename(old, old+".pre-etcd-raft"); err != nil {
				return err
			}
		}
	}
	log.Info("data directory converted; the old files stay in wal.pre-etcd-raft and snapshots.pre-etcd-raft until you delete them", "dir", raftDir)
	return syncDir(raftDir)
}

func convertOldLayout(raftDir, logDir, snapDir string, databases int, log *slog.Logger) error {
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	old, err := wal.Open(filepath.Join(raftDir, "wal"), wal.WithMetaStore(meta), wal.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		return fmt.Errorf("open the old log: %w", err)
	}
	defer old.Close()
	oldSnaps, err := hraft.NewFileSnapshotStoreWithLogger(raftDir, 1, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("open the old snapshots: %w", err)
	}
	first, err := old.FirstIndex()
	if err != nil {
		return err
	}
	last, err := old.LastIndex()
	if err != nil {
		return err
	}

	// The base: the newest old snapshot, or else the bootstrap
	// configuration at index 1 (nothing was applied before it).
	var (
		base     uint64
		baseTerm uint64
		config   hraft.Configuration
		state    io.ReadCloser
	)
	metas, err := oldSnaps.List()
	if err != nil {
		return err
	}
	if len(metas) > 0 {
		m, rc, err := oldSnaps.Open(metas[0].ID)
		if err != nil {
			return fmt.Errorf("open old snapshot %s: %w", metas[0].ID, err)
		}
		base, baseTerm, config, state = m.Index, m.Term, m.Configuration, rc
	} else {
		var l hraft.Log
		if first != 1 || old.GetLog(1, &l) != nil || l.Type != hraft.LogConfiguration {
			return errors.New("no snapshot and no bootstrap configuration at index 1: nothing to convert from")
		}
		base, baseTerm, config = 1, l.Term, hraft.DecodeConfiguration(l.Data)
	}
	if state != nil {
		defer state.Close()
	}

	// The base configuration is committed (the snapshot's, or the
	// bootstrap's); every later configuration becomes a membership change
	// at its own index, so that nodes converted from the same log agree
	// on the configuration at every index, whichever entries were
	// committed.
	members, cs := oldConfState(config)
	if len(cs.Voters) == 0 {
		return errors.New("the old configuration has no voter")
	}
	addrs := map[string]uint64{} // every server's address seen, for the vote
	for _, m := range members {
		addrs[m.Addr] = m.ID
	}
	var ents []raftpb.Entry
	for i := base + 1; last > 0 && i <= last; i++ {
		var l hraft.Log
		if err := old.GetLog(i, &l); err != nil {
			return fmt.Errorf("old log entry %d: %w", i, err)
		}
		e := raftpb.Entry{Index: i, Term: l.Term, Type: raftpb.EntryNormal}
		switch l.Type {
		case hraft.LogCommand:
			e.Data = append(make([]byte, group.ProposalHeader, group.ProposalHeader+len(l.Data)), l.Data...)
		case hraft.LogConfiguration:
			next := hraft.DecodeConfiguration(l.Data)
			if cc, ok := configChange(config, next); ok {
				if e.Data, err = cc.Marshal(); err != nil {
					return err
				}
				e.Type = raftpb.EntryConfChangeV2
			}
			config = next
			for _, s := range next.Servers {
				addrs[string(s.Address)] = raftID(string(s.ID))
			}
		}
		ents = append(ents, e)
	}

	hs := raftpb.HardState{Commit: base}
	if hs.Term, err = old.GetUint64(oldKeyCurrentTerm); err != nil {
		return err
	}
	hs.Term = max(hs.Term, baseTerm)
	if len(ents) > 0 {
		hs.Term = max(hs.Term, ents[len(ents)-1].Term)
	}
	voteTerm, _ := old.GetUint64(oldKeyLastVoteTerm)
	voteAddr, _ := old.Get(oldKeyLastVoteCand)
	if voteTerm == hs.Term && len(voteAddr) > 0 {
		hs.Vote = addrs[string(voteAddr)]
		if hs.Vote == 0 {
			// A vote we cannot name must not be forgotten within its term.
			hs.Term++
		}
	}

	smeta := raftpb.SnapshotMetadata{Index: base, Term: baseTerm, ConfState: cs}
	snaps, err := raftlog.OpenSnapshots(snapDir, 2, log)
	if err != nil {
		return err
	}
	w, err := snaps.Create(smeta)
	if err != nil {
		return err
	}
	err = group.EncodeSnapshot(w, members, func(w io.Writer) error {
		if state == nil {
			return newFSM(databases, command.NewExecutor(nil), command.Ops()).Snapshot()(w)
		}
		_, err := io.Copy(w, state)
		return err
	})
	if err != nil {
		_ = w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		return err
	}
	nl, err := raftlog.Open(logDir, raftlog.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := nl.InstallSnapshot(smeta); err != nil {
		nl.Close()
		return err
	}
	if err := nl.Append(hs, ents); err != nil {
		nl.Close()
		return err
	}
	log.Info("converted the old log", "snapshot_index", base, "entries", len(ents), "term", hs.Term, "members", len(members))
	return nl.Close()
}

// oldConfState is a hashicorp configuration as the group's member table
// and raft's ConfState.
func oldConfState(c hraft.Configuration) ([]group.Member, raftpb.ConfState) {
	var members []group.Member
	var cs raftpb.ConfState
	for _, s := range c.Servers {
		m := oldMember(s)
		members = append(members, m)
		if m.Learner {
			cs.Learners = append(cs.Learners, m.ID)
		} else {
			cs.Voters = append(cs.Voters, m.ID)
		}
	}
	return members, cs
}

func oldMember(s hraft.Server) group.Member {
	return group.Member{ID: raftID(string(s.ID)), Name: string(s.ID), Addr: string(s.Address), Learner: s.Suffrage != hraft.Voter}
}

// configChange is the membership change that turns configuration prev into
// next, with the member it concerns in its context (the group's format:
// ProposalHeader bytes of id, zero here, then the member's JSON; with
// several changes, the last one's). ok is false when nothing changed.
// hashicorp/raft changes one server at a time; more than one change
// becomes a joint configuration that raft leaves by itself.
func configChange(prev, next hraft.Configuration) (raftpb.ConfChangeV2, bool) {
	var cc raftpb.ConfChangeV2
	var about *group.Member
	old := map[hraft.ServerID]hraft.Server{}
	for _, s := range prev.Servers {
		old[s.ID] = s
	}
	for _, s := range next.Servers {
		m := oldMember(s)
		was, ok := old[s.ID]
		delete(old, s.ID)
		var typ raftpb.ConfChangeType
		switch {
		case !ok || was.Suffrage != s.Suffrage:
			typ = raftpb.ConfChangeAddNode
			if m.Learner {
				typ = raftpb.ConfChangeAddLearnerNode
			}
		case was.Address != s.Address:
			typ = raftpb.ConfChangeUpdateNode
		default:
			continue
		}
		cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: typ, NodeID: m.ID})
		about = &m
	}
	for _, s := range prev.Servers {
		if _, gone := old[s.ID]; gone {
			cc.Changes = append(cc.Changes, raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode, NodeID: raftID(string(s.ID))})
		}
	}
	if len(cc.Changes) == 0 {
		return cc, false
	}
	cc.Context = make([]byte, group.ProposalHeader)
	if about != nil {
		b, _ := json.Marshal(about)
		cc.Context = append(cc.Context, b...)
	}
	return cc, true
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
