package raftlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"

	hraft "github.com/hashicorp/raft"
	"go.etcd.io/raft/v3/raftpb"
)

// Entry types as stored in raft-wal's Log.Type: etcd's EntryType plus
// logTypeBase. hashicorp/raft's own types are 0–5, so a log written by it
// can never decode as ours, and ours shows in waldump as a number rather
// than as a hashicorp type it is not. Append new types, never renumber.
const (
	logTypeBase                       = 0x40
	logTypeNormal       hraft.LogType = logTypeBase + hraft.LogType(raftpb.EntryNormal)       // 0x40
	logTypeConfChange   hraft.LogType = logTypeBase + hraft.LogType(raftpb.EntryConfChange)   // 0x41
	logTypeConfChangeV2 hraft.LogType = logTypeBase + hraft.LogType(raftpb.EntryConfChangeV2) // 0x42
	logTypeLast                       = logTypeConfChangeV2
	entryChecksumLen                  = 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// entryChecksum covers everything an entry is: raft-wal checks only the
// last batch of the tail segment at open, so a record corrupted later, or
// in an earlier batch, would otherwise be served to the state machine and
// to followers as it is. It travels in the Log's Extensions field.
func entryChecksum(index, term uint64, typ raftpb.EntryType, data []byte) uint32 {
	var hdr [17]byte
	binary.LittleEndian.PutUint64(hdr[0:8], index)
	binary.LittleEndian.PutUint64(hdr[8:16], term)
	hdr[16] = byte(typ)
	return crc32.Update(crc32.Checksum(hdr[:], castagnoli), castagnoli, data)
}

// toLogs maps entries onto raft-wal's records. Data is shared, not
// copied: raft's entries are immutable once handed to storage.
func toLogs(ents []raftpb.Entry) ([]*hraft.Log, error) {
	logs := make([]hraft.Log, len(ents))
	ptrs := make([]*hraft.Log, len(ents))
	sums := make([]byte, entryChecksumLen*len(ents))
	for i := range ents {
		e := &ents[i]
		if e.Type < 0 || logTypeBase+int(e.Type) > int(logTypeLast) {
			return nil, fmt.Errorf("%w: entry %d has unknown type %d", ErrInvalid, e.Index, e.Type)
		}
		sum := sums[i*entryChecksumLen : (i+1)*entryChecksumLen : (i+1)*entryChecksumLen]
		binary.LittleEndian.PutUint32(sum, entryChecksum(e.Index, e.Term, e.Type, e.Data))
		logs[i] = hraft.Log{
			Index:      e.Index,
			Term:       e.Term,
			Type:       logTypeBase + hraft.LogType(e.Type),
			Data:       e.Data,
			Extensions: sum,
		}
		ptrs[i] = &logs[i]
	}
	return ptrs, nil
}

// fromLog is toLogs' inverse; it fails with ErrCorrupt on a record we
// did not write or whose checksum does not match.
func fromLog(l *hraft.Log) (raftpb.Entry, error) {
	if l.Type < logTypeBase || l.Type > logTypeLast {
		return raftpb.Entry{}, fmt.Errorf("%w: entry %d has type %d, not one of ours", ErrCorrupt, l.Index, l.Type)
	}
	e := raftpb.Entry{Index: l.Index, Term: l.Term, Type: raftpb.EntryType(l.Type - logTypeBase), Data: l.Data}
	if len(l.Extensions) != entryChecksumLen ||
		binary.LittleEndian.Uint32(l.Extensions) != entryChecksum(e.Index, e.Term, e.Type, e.Data) {
		return raftpb.Entry{}, fmt.Errorf("%w: entry %d fails its checksum", ErrCorrupt, l.Index)
	}
	return e, nil
}

// snapRecord is what the meta store holds besides the hard state: the
// latest snapshot's metadata and the compaction point, the entry before
// FirstIndex whose term raft still asks for. The compaction point is at
// most the snapshot's index (equal after an install).
type snapRecord struct {
	compactIndex, compactTerm uint64
	meta                      raftpb.SnapshotMetadata
}

const snapRecordVersion = 1

func (r snapRecord) marshal() ([]byte, error) {
	meta, err := r.meta.Marshal()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(meta))
	b = append(b, snapRecordVersion)
	b = binary.AppendUvarint(b, r.compactIndex)
	b = binary.AppendUvarint(b, r.compactTerm)
	return append(b, meta...), nil
}

func (r *snapRecord) unmarshal(b []byte) error {
	if len(b) == 0 || b[0] != snapRecordVersion {
		return fmt.Errorf("%w: snapshot record of unknown version", ErrCorrupt)
	}
	b = b[1:]
	var n int
	if r.compactIndex, n = binary.Uvarint(b); n <= 0 {
		return fmt.Errorf("%w: snapshot record", ErrCorrupt)
	}
	b = b[n:]
	if r.compactTerm, n = binary.Uvarint(b); n <= 0 {
		return fmt.Errorf("%w: snapshot record", ErrCorrupt)
	}
	r.meta = raftpb.SnapshotMetadata{}
	if err := r.meta.Unmarshal(b[n:]); err != nil {
		return fmt.Errorf("%w: snapshot record: %v", ErrCorrupt, err)
	}
	return nil
}

// cloneMeta copies the ConfState's slices, so that neither the caller nor
// we share them with the other.
func cloneMeta(m raftpb.SnapshotMetadata) raftpb.SnapshotMetadata {
	cs := &m.ConfState
	cs.Voters = slices.Clone(cs.Voters)
	cs.Learners = slices.Clone(cs.Learners)
	cs.VotersOutgoing = slices.Clone(cs.VotersOutgoing)
	cs.LearnersNext = slices.Clone(cs.LearnersNext)
	return m
}
