package keyspace

import (
	"bytes"
	"testing"
)

// memcached's item bits: the replicated ones (stale, win sent) are stored
// with the item, kept by a copy with a new expiry, dropped by a new value
// and carried by snapshots; a snapshot without them is what the release
// before wrote.
func TestItemBitsStoredAndSnapshotted(t *testing.T) {
	ks := New(1)
	ks.Put(0, "plain", &Entry{Type: TypeString, Str: []byte("p")}, 0)
	var old bytes.Buffer
	v := ks.View()
	if err := v.Encode(&old); err != nil {
		t.Fatal(err)
	}
	v.Release()
	ks.Put(0, "k", &Entry{Type: TypeString, Str: []byte("v"), Bits: BitStale | BitWinSent}, 0)
	e := ks.Get(0, "k", 0)
	if !e.Stale() || !e.WinSent() {
		t.Fatalf("bits not stored: %+v", e)
	}
	ks.Put(0, "k", e.WithExpiry(5000), 0)
	if e = ks.Get(0, "k", 0); !e.Stale() || !e.WinSent() || e.ExpireAt != 5000 {
		t.Fatalf("a new expiry lost the bits: %+v", e)
	}
	ks.Put(0, "w", &Entry{Type: TypeString, Str: []byte("w"), Bits: BitWinSent}, 0)

	var buf bytes.Buffer
	v = ks.View()
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	v.Release()
	got, err := Decode(&buf, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := got.Lookup(0, "k"); e.Bits != BitStale|BitWinSent || string(e.Str) != "v" || e.ExpireAt != 5000 {
		t.Fatalf("snapshot lost the bits: %+v", e)
	}
	if e := got.Lookup(0, "w"); e.Bits != BitWinSent || e.Stale() {
		t.Fatalf("win sent: %+v", e)
	}
	if e := got.Lookup(0, "plain"); e.Bits != 0 {
		t.Fatalf("plain: %+v", e)
	}
	// The snapshot without bits is the old format: its first record's
	// type byte has no high nibble, and it still loads.
	if dec, err := Decode(bytes.NewReader(old.Bytes()), 1); err != nil || dec.Lookup(0, "plain").Bits != 0 {
		t.Fatalf("old snapshot: %v", err)
	}

	ks.Put(0, "k", &Entry{Type: TypeString, Str: []byte("new")}, 0)
	if e := ks.Get(0, "k", 0); e.Bits != 0 {
		t.Fatalf("a new value kept the bits: %+v", e)
	}
}

// A record whose type byte has an unknown bit is refused, not misread.
func TestSnapshotRefusesUnknownItemBits(t *testing.T) {
	ks := New(1)
	ks.Put(0, "k", &Entry{Type: TypeString, Str: []byte("v")}, 0)
	var buf bytes.Buffer
	v := ks.View()
	if err := v.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	v.Release()
	b := buf.Bytes()
	const first = 7 // magic, version, database count 1, stamp 0
	if b[first] != byte(TypeString) {
		t.Fatalf("layout: % x", b[:first+1])
	}
	b[first] |= 0x80
	if _, err := Decode(bytes.NewReader(b), 1); err == nil {
		t.Fatal("unknown item bit accepted")
	}
}

// The fetched bit (mg's h) is set by a read, kept by a copy of the same
// item (its CAS kept) and cleared by a new value; LastAccess ignores it.
func TestFetchedBit(t *testing.T) {
	ks := New(1)
	ks.Put(0, "k", &Entry{Type: TypeString, Str: []byte("v")}, 1000)
	e := ks.Get(0, "k", 1000)
	if e.Fetched() {
		t.Fatal("fetched before any read")
	}
	e.Touch(2000)
	e = ks.Get(0, "k", 2000)
	if !e.Fetched() || e.LastAccess() != 2000 {
		t.Fatalf("after a read: fetched %v, last access %d", e.Fetched(), e.LastAccess())
	}
	e.Touch(1500) // an older clock changes nothing
	if e.LastAccess() != 2000 {
		t.Fatalf("last access %d", e.LastAccess())
	}
	ks.Put(0, "k", e.WithExpiry(9000), 2500)
	if e = ks.Get(0, "k", 2500); !e.Fetched() || e.LastAccess() != 2500 {
		t.Fatalf("after a new expiry: fetched %v, last access %d", e.Fetched(), e.LastAccess())
	}
	ks.Put(0, "k", &Entry{Type: TypeString, Str: []byte("new")}, 3000)
	if e = ks.Get(0, "k", 3000); e.Fetched() || e.LastAccess() != 3000 {
		t.Fatalf("after a new value: fetched %v, last access %d", e.Fetched(), e.LastAccess())
	}
}
