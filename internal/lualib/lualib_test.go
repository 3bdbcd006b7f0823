package lualib

import (
	"errors"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// run executes a chunk with the libraries loaded and returns its single
// result as a string, or the error text.
func run(t *testing.T, chunk string) string {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	Open(L)
	if err := L.DoString(chunk); err != nil {
		return "error: " + err.Error()
	}
	return L.Get(-1).String()
}

func TestRoundTrips(t *testing.T) {
	for _, tc := range []struct{ chunk, want string }{
		{`return cjson.encode(cjson.decode('{"a":[1,2.5,"x",null,true,{}],"b":"\\u00e9"}'))`, `{"a":[1,2.5,"x",null,true,{}],"b":"é"}`},
		{`local t = cmsgpack.unpack(cmsgpack.pack({1, 'two', {x = 3}, 2^40, -7.25})) return cjson.encode(t)`, `[1,"two",{"x":3},1099511627776,-7.25]`},
		{`return table.concat({struct.unpack('>i2c0', struct.pack('>i2c0', 3, 'abc'))}, ',')`, `abc,6`},
		{`return bit.tohex(bit.bxor(bit.lshift(1, 4), 0xff))`, `000000ef`},
		{`return struct.size('!bd')`, `16`},
	} {
		if got := run(t, tc.chunk); got != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.chunk, got, tc.want)
		}
	}
}

// The decoders never panic, whatever the input: they return values or
// raise a Lua error.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, "\x93\x01\xa1x\xc0", `"\ud83d\ude00"`, "\xdc\x00\x02\x01", "[[[[", "\xdf\xff\xff\xff\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		L := lua.NewState()
		defer L.Close()
		Open(L)
		L.SetGlobal("input", lua.LString(s))
		for _, chunk := range []string{
			"return cjson.decode(input)",
			"return cmsgpack.unpack(input)",
			"return cmsgpack.unpack_limit(input, 3, 1)",
			"return struct.unpack('bhi', input)",
			"return struct.unpack(input, 'abcdefgh')",
		} {
			var apiErr *lua.ApiError
			if err := L.DoString(chunk); errors.As(err, &apiErr) && apiErr.Type == lua.ApiErrorPanic {
				t.Fatalf("%s: %v", chunk, err)
			}
		}
	})
}
