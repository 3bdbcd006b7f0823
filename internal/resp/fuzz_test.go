package resp

import (
	"errors"
	"testing"
)

// FuzzParse feeds each input whole and then split at every position, as a
// connection would receive it in pieces, and checks that the parser never
// panics, never claims more bytes than it was given, and reaches the same
// result whichever way the input arrived.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"PING\r\n",
		"SET \"a\\x41\" 'b\\'c'\r\n",
		"*-1\r\n",
		"*1\r\n$-1\r\n",
		"*2\r\n$1\r\na\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, unauth bool) {
		lim := DefaultLimits()
		lim.MaxInline = 256
		lim.MaxBulk = 1 << 16
		lim.Unauthenticated = unauth
		wantArgs, wantN, wantErr := Parse(in, lim, nil)
		if wantN < 0 || wantN > len(in) {
			t.Fatalf("consumed %d of %d bytes", wantN, len(in))
		}
		if wantErr == nil && wantN == 0 {
			t.Fatalf("no error and no progress on %q", in)
		}
		for i := 0; i <= len(in); i++ {
			args, n, err := Parse(in[:i], lim, nil)
			if err == nil {
				// A complete request found in a prefix must be the same
				// request the whole input starts with.
				if wantErr != nil || n != wantN || len(args) != len(wantArgs) {
					t.Fatalf("prefix %d gave %d args/%d bytes, whole gave %d args/%d bytes/%v", i, len(args), n, len(wantArgs), wantN, wantErr)
				}
				break
			}
			var pe *ProtocolError
			if errors.As(err, &pe) && !errors.As(wantErr, &pe) {
				t.Fatalf("prefix %d: protocol error %v, whole input: %v", i, err, wantErr)
			}
		}
	})
}
