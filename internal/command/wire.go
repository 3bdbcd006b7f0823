package command

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Results travel between nodes when a follower forwards a command to the
// leader. Errors are sent as a code for the executor's known errors, so the
// follower's front end translates them exactly as the leader's would, and as
// text otherwise.

// wireErrors lists the errors with a code: the position plus one. The list
// is closed (nodes of different versions share a cluster, and the codes
// after it are fixed): a new error is a ReplyError, which travels as text.
var wireErrors = []error{
	ErrWrongType, ErrNoLeader, ErrShutdown, ErrNotInteger, ErrHashNotInteger, ErrOverflow,
	ErrNoSuchKey, ErrOOM, ErrInvalidExpire, ErrValueTooLarge, ErrUnknownCommand, ErrBadDB,
	ErrNotNumeric,
}

// Codes after wireErrors: any other error as its text, and a ReplyError.
const (
	codeText  = 14
	codeReply = 15
)

// A result's Form and an array's Pairs travel in the Str field, which
// bulks, integers and arrays do not use otherwise (a verbatim string's
// format, kept in Str, follows its mark): a node of an older version,
// which knows no mark, reads the result as the plain bulk, integer or
// array it is, and its clients get the reply they did before (its RESP2
// form).
const (
	markPrefix = "\x00"
	markDouble = markPrefix + "double"
	markPairs  = markPrefix + "pairs"
)

// formMarks are the marks of the forms, by Form.
var formMarks = [...]string{FormDouble: markDouble, FormBigNumber: markPrefix + "big", FormVerbatim: markPrefix + "verbatim:",
	FormBool: markPrefix + "bool", FormMap: markPrefix + "map", FormSet: markPrefix + "set"}

// wireMark is the mark that stands for r's Form or Pairs on the wire.
func wireMark(r *Result) string {
	switch {
	case r.Kind != KindBulk && r.Kind != KindInt && r.Kind != KindArray:
	case r.Form == FormVerbatim:
		return formMarks[FormVerbatim] + r.Str
	case r.Form != FormNone && int(r.Form) < len(formMarks) && r.Str == "":
		return formMarks[r.Form]
	case r.Pairs && r.Str == "":
		return markPairs
	}
	return ""
}

// unmark restores what the Str field's mark stands for.
func (r *Result) unmark() {
	if !strings.HasPrefix(r.Str, markPrefix) || (r.Kind != KindBulk && r.Kind != KindInt && r.Kind != KindArray) {
		return
	}
	if r.Str == markPairs {
		r.Str, r.Pairs = "", true
		return
	}
	for f, m := range formMarks {
		switch {
		case m == "":
		case Form(f) == FormVerbatim && strings.HasPrefix(r.Str, m):
			r.Str, r.Form = r.Str[len(m):], FormVerbatim
			return
		case r.Str == m:
			r.Str, r.Form = "", Form(f)
			return
		}
	}
}

// AppendTxResult appends the encoding of r to dst.
func AppendTxResult(dst []byte, r TxResult) []byte {
	dst = appendError(dst, r.Err)
	dst = binary.AppendUvarint(dst, uint64(len(r.Results)))
	for i := range r.Results {
		dst = appendResult(dst, &r.Results[i])
	}
	return dst
}

// AppendResult appends the encoding of one result to dst.
func AppendResult(dst []byte, r Result) []byte { return appendResult(dst, &r) }

func appendResult(dst []byte, r *Result) []byte {
	dst = append(dst, byte(r.Kind))
	dst = binary.AppendVarint(dst, r.Int)
	if r.Bulk == nil {
		dst = append(dst, 0)
	} else {
		dst = append(dst, 1)
		dst = binary.AppendUvarint(dst, uint64(len(r.Bulk)))
		dst = append(dst, r.Bulk...)
	}
	str := r.Str
	if m := wireMark(r); m != "" {
		str = m
	}
	dst = binary.AppendUvarint(dst, uint64(len(str)))
	dst = append(dst, str...)
	dst = binary.AppendUvarint(dst, uint64(len(r.Array)))
	for i := range r.Array {
		dst = appendResult(dst, &r.Array[i])
	}
	dst = appendError(dst, r.Err)
	dst = binary.AppendUvarint(dst, uint64(r.Flags))
	return binary.AppendUvarint(dst, r.CAS)
}

func appendError(dst []byte, err error) []byte {
	if err == nil {
		return append(dst, 0)
	}
	for i, e := range wireErrors {
		if errors.Is(err, e) {
			return binary.AppendUvarint(dst, uint64(i+1))
		}
	}
	code := uint64(codeText)
	var re ReplyError
	if errors.As(err, &re) {
		code = codeReply
	}
	dst = binary.AppendUvarint(dst, code)
	msg := err.Error()
	dst = binary.AppendUvarint(dst, uint64(len(msg)))
	return append(dst, msg...)
}

// DecodeTxResult decodes AppendTxResult's encoding. Byte slices in the
// result point into data.
func DecodeTxResult(data []byte) (TxResult, error) {
	d := decoder{b: data}
	var r TxResult
	r.Err = d.error()
	if n := d.count(); n > 0 {
		r.Results = make([]Result, n)
		for i := range r.Results {
			d.result(&r.Results[i], 0)
		}
	}
	return r, d.finish()
}

// DecodeResult decodes AppendResult's encoding.
func DecodeResult(data []byte) (Result, error) {
	d := decoder{b: data}
	var r Result
	d.result(&r, 0)
	return r, d.finish()
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrBadEncoding, d.err)
	}
	return nil
}

// maxResultDepth bounds nesting so corrupt input cannot exhaust the stack.
const maxResultDepth = 16

func (d *decoder) result(r *Result, depth int) {
	if depth > maxResultDepth {
		d.fail("result nesting")
		return
	}
	r.Kind = Kind(d.byte())
	r.Int = d.varint()
	if d.byte() == 1 {
		r.Bulk = d.bytes()
		if r.Bulk == nil && d.err == nil {
			r.Bulk = []byte{}
		}
	}
	r.Str = string(d.bytes())
	r.unmark()
	if n := d.count(); n > 0 {
		r.Array = make([]Result, n)
		for i := range r.Array {
			d.result(&r.Array[i], depth+1)
		}
	}
	r.Err = d.error()
	r.Flags = uint32(d.uvarint())
	r.CAS = d.uvarint()
}

func (d *decoder) error() error {
	code := d.uvarint()
	switch {
	case code == 0:
		return nil
	case code <= uint64(len(wireErrors)):
		return wireErrors[code-1]
	case code == codeText:
		return errors.New(string(d.bytes()))
	case code == codeReply:
		return ReplyError(d.bytes())
	}
	d.fail("error code")
	return nil
}
