package rdb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
)

// DUMP and RESTORE's payload: one value in the file's encoding (its type
// byte, then the value), the RDB version that wrote it (2 bytes) and the
// CRC-64 of all that (8 bytes), both little-endian, as redis's
// createDumpPayload writes it.

// dumpVersion is the RDB version of redis 7.0 (RDB_VERSION), the newest a
// payload may name.
const dumpVersion = 10

// Errors of DecodeDump, with redis-server's RESTORE wording.
var (
	// ErrDumpFooter: the payload names a newer RDB version, or its
	// checksum is wrong.
	ErrDumpFooter = errors.New("DUMP payload version or checksum are wrong")
	// ErrDumpData: the value itself cannot be read (or is a module's
	// type, an empty collection).
	ErrDumpData = errors.New("Bad data format")
	// ErrDumpGroups: the value is a stream with consumer groups, which
	// hatcheck does not hold.
	ErrDumpGroups = errors.New("DUMP payload holds a stream with consumer groups, which hatcheck does not support")
)

// EncodeDump returns the payload of r's value (its key, database, expiry
// and flags are not part of it). Collections use the plain encodings,
// which every redis-server reads; strings that are integers are stored as
// such, as redis does.
func EncodeDump(r *Record) ([]byte, error) {
	typ, err := valueType(r)
	if err != nil {
		return nil, err
	}
	b, err := appendValue([]byte{typ}, r, true)
	if err != nil {
		return nil, err
	}
	b = binary.LittleEndian.AppendUint16(b, dumpVersion)
	return binary.LittleEndian.AppendUint64(b, crcUpdate(0, b)), nil
}

// VerifyDump checks a payload's footer as redis's verifyDumpPayload does:
// at least the footer, a version no newer than redis 7.0's, the checksum.
func VerifyDump(p []byte) error {
	if len(p) < 10 {
		return ErrDumpFooter
	}
	footer := p[len(p)-10:]
	if binary.LittleEndian.Uint16(footer) > dumpVersion {
		return ErrDumpFooter
	}
	if binary.LittleEndian.Uint64(footer[2:]) != crcUpdate(0, p[:len(p)-8]) {
		return ErrDumpFooter
	}
	return nil
}

// DecodeDump reads a payload's value into a Record (Key, DB and ExpireAt
// unset), in any encoding Read accepts: redis-server 7.0's DUMP gives
// small collections as listpacks and intsets. As redis, it reads the value
// from the whole payload, footer included: bytes left over are ignored,
// and a value that runs into the footer is read from it.
func DecodeDump(p []byte) (*Record, error) {
	if err := VerifyDump(p); err != nil {
		return nil, err
	}
	d := &reader{br: bufio.NewReader(bytes.NewReader(p[1:]))}
	rec := &Record{}
	d.value(p[0], rec)
	if d.err != nil || rec.Type == 0 {
		return nil, ErrDumpData
	}
	if d.groups > 0 {
		return nil, ErrDumpGroups
	}
	if rec.Type != String && rec.Type != Stream && len(rec.Elems) == 0 && len(rec.Pairs) == 0 && len(rec.Members) == 0 {
		return nil, ErrDumpData // redis refuses empty collections (an empty stream is a stream)
	}
	return rec, nil
}

// appendIntString appends s in redis's integer string encoding when it is
// the canonical decimal of a 32-bit integer (rdbTryIntegerEncoding), and
// reports whether it did.
func appendIntString(b, s []byte) ([]byte, bool) {
	if len(s) == 0 || len(s) > 11 {
		return b, false
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || strconv.FormatInt(v, 10) != string(s) {
		return b, false
	}
	switch {
	case v >= -1<<7 && v < 1<<7:
		return append(b, 0xc0|encInt8, byte(int8(v))), true
	case v >= -1<<15 && v < 1<<15:
		return binary.LittleEndian.AppendUint16(append(b, 0xc0|encInt16), uint16(int16(v))), true
	case v >= -1<<31 && v < 1<<31:
		return binary.LittleEndian.AppendUint32(append(b, 0xc0|encInt32), uint32(int32(v))), true
	}
	return b, false
}
