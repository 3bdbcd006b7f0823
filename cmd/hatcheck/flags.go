package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseArgs parses args with fs, flags and other arguments in any order:
// "cluster status --http-addr X" as well as "cluster --http-addr X status".
// -h prints fs.Usage to stdout (ok false, code 0); a bad flag prints one
// line to stderr — the error and where the flags are listed — not the
// whole usage (ok false, code 2).
func parseArgs(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (rest []string, code int, ok bool) {
	fs.SetOutput(io.Discard)
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()
				return nil, 0, false
			}
			fmt.Fprintf(stderr, "%s: %v (run '%s -h' for the flags)\n", fs.Name(), err, fs.Name())
			return nil, 2, false
		}
		if fs.NArg() == 0 {
			return rest, 0, true
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
