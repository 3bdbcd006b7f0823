package command

import (
	"errors"

	"github.com/hatcheck/hatcheck/internal/keyspace"
	"github.com/hatcheck/hatcheck/internal/rdb"
)

// DUMP and RESTORE: a value as redis's serialized payload (see package
// rdb), and back. The payload RESTORE proposes was verified and decoded by
// the front end before it was proposed; the row's check verifies it again
// when an entry is decoded, so a corrupt payload never reaches a state
// machine.
var dumpOps = []opRow{
	{op: OpDump, name: "dump", exec: execDump},
	{op: OpRestore, name: "restore", flags: opWrite | opDenyOOM, args: argShape{1, 1}, check: checkRestore, exec: execRestore},
}

// ErrBusyKey is RESTORE onto an existing key without REPLACE.
var ErrBusyKey = ReplyError("BUSYKEY Target key name already exists.")

func checkRestore(c *Cmd) error {
	switch len(c.Args) {
	case 1:
		return rdb.VerifyDump(c.Args[0])
	case 2:
		if len(c.Args[0]) == 0 {
			return nil
		}
	}
	return errors.New("op restore: bad arguments")
}

func execDump(v env, _ *Cmd) Result {
	e := v.ks.Get(v.db, v.key, v.h.Now)
	if e == nil {
		return resNil
	}
	p, err := rdb.EncodeDump(RecordOf(e))
	if err != nil {
		return resErr(err)
	}
	return resBulk(p)
}

// RecordOf is e's value as package rdb holds it (key, database and
// expiry unset), for DUMP and for backups.
func RecordOf(e *keyspace.Entry) *rdb.Record {
	r := &rdb.Record{}
	switch e.Type {
	case keyspace.TypeString:
		r.Type, r.Str = rdb.String, e.Str
	case keyspace.TypeHash:
		r.Type = rdb.Hash
		e.Hash.Each(func(f string, val []byte) bool {
			r.Pairs = append(r.Pairs, []byte(f), val)
			return true
		})
	case keyspace.TypeSet:
		r.Type = rdb.Set
		for _, m := range e.Set.Members() {
			r.Elems = append(r.Elems, []byte(m))
		}
	case keyspace.TypeList:
		r.Type, r.Elems = rdb.List, e.List.Range(0, e.List.Len())
	case keyspace.TypeZSet:
		r.Type = rdb.ZSet
		for _, el := range e.ZSet.Range(0, e.ZSet.Len()) {
			r.Members = append(r.Members, []byte(el.Member))
			r.Scores = append(r.Scores, el.Score)
		}
	case keyspace.TypeStream:
		s := e.Stream
		r.Type = rdb.Stream
		r.Stream = &rdb.StreamValue{Last: rdb.StreamID(s.Last), First: rdb.StreamID(s.First),
			MaxDeleted: rdb.StreamID(s.MaxDeleted), Added: s.Added}
		if n := s.Len(); n > 0 {
			r.Stream.Entries = make([]rdb.StreamEntry, n)
			for i, se := range s.Entries(0, n) {
				r.Stream.Entries[i] = rdb.StreamEntry{ID: rdb.StreamID(se.ID), Fields: se.Fields}
			}
		}
	}
	return r
}

// entryFromRecord is the entry holding a decoded payload's value.
func entryFromRecord(r *rdb.Record) *keyspace.Entry {
	switch r.Type {
	case rdb.String:
		return &keyspace.Entry{Type: keyspace.TypeString, Str: r.Str}
	case rdb.Hash:
		h, _ := (*keyspace.Hash)(nil).With(r.Pairs)
		return &keyspace.Entry{Type: keyspace.TypeHash, Hash: h}
	case rdb.Set:
		s, _ := (*keyspace.Set)(nil).With(r.Elems)
		return &keyspace.Entry{Type: keyspace.TypeSet, Set: s}
	case rdb.List:
		return &keyspace.Entry{Type: keyspace.TypeList, List: keyspace.NewList(r.Elems)}
	case rdb.ZSet:
		elems := make([]keyspace.ZElem, len(r.Members))
		for i, m := range r.Members {
			elems[i] = keyspace.ZElem{Member: string(m), Score: r.Scores[i]}
		}
		return &keyspace.Entry{Type: keyspace.TypeZSet, ZSet: keyspace.NewZSet(elems)}
	case rdb.Stream:
		s := r.Stream
		if s == nil {
			return nil
		}
		entries := make([]keyspace.StreamEntry, len(s.Entries))
		for i, se := range s.Entries {
			// rdb hands over entries in increasing ID order, the last
			// no later than Last: what keyspace.NewStream keeps.
			entries[i] = keyspace.StreamEntry{ID: keyspace.StreamID(se.ID), Fields: se.Fields}
		}
		st := keyspace.NewStream(entries, keyspace.StreamID(s.Last), keyspace.StreamID(s.MaxDeleted), keyspace.StreamID(s.First), s.Added)
		return &keyspace.Entry{Type: keyspace.TypeStream, Stream: st}
	}
	return nil
}

// execRestore is redis's restoreCommand from the key check on: the key
// must not exist unless REPLACE; a TTL already past deletes the key
// replaced (a "del" event) and stores nothing.
func execRestore(v env, c *Cmd) Result {
	replace := c.Has(FlagXX)
	if !replace && v.ks.Get(v.db, v.key, v.h.Now) != nil {
		return resErr(ErrBusyKey)
	}
	if len(c.Args) == 2 {
		return resErr(ReplyError(c.Args[1]))
	}
	rec, err := rdb.DecodeDump(c.Args[0])
	if err != nil {
		return resErr(ReplyError("ERR " + err.Error()))
	}
	e := entryFromRecord(rec)
	if e == nil {
		return resErr(ReplyError("ERR Bad data format"))
	}
	deleted := false
	if replace {
		deleted = v.ks.Get(v.db, v.key, v.h.Now) != nil
		v.ks.Delete(v.db, v.key)
	}
	if c.N != 0 {
		at, err := expireAt(c, v.h.Now)
		if err != nil {
			return resErr(err)
		}
		if at <= v.h.Now {
			if deleted {
				v.ks.Notify(v.db, keyspace.EventGeneric, "del", v.key)
			}
			return resOK
		}
		e.ExpireAt = at
	}
	v.ks.Put(v.db, v.key, e, v.h.Now)
	v.ks.Notify(v.db, keyspace.EventGeneric, "restore", v.key)
	return resOK
}
