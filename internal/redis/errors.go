package redis

import (
	"errors"
	"strings"

	"github.com/hatcheck/hatcheck/internal/command"
)

// Error replies, worded exactly as redis-server 7.0 words them.
const (
	errSyntax     = "ERR syntax error"
	errNotInteger = "ERR value is not an integer or out of range"
	errWrongType  = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errOOM        = "OOM command not allowed when used memory > 'maxmemory'."
	errNoAuth     = "NOAUTH Authentication required."
	errWrongPass  = "WRONGPASS invalid username-password pair or user is disabled."
	errDBRange    = "ERR DB index is out of range"
)

func arityError(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

func invalidExpire(name string) string {
	return "ERR invalid expire time in '" + name + "' command"
}

// unknownCommand quotes the command and up to the first arguments, as
// redis-server does, each cut to 128 bytes.
func unknownCommand(args [][]byte) string {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.WriteString(clip(args[0]))
	b.WriteString("', with args beginning with: ")
	for _, a := range args[1:] {
		if b.Len() > 256 {
			break
		}
		b.WriteString("'")
		b.WriteString(clip(a))
		b.WriteString("' ")
	}
	return b.String()
}

func unknownSubcommand(sub []byte, cmd string) string {
	return "ERR unknown subcommand '" + clip(sub) + "'. Try " + cmd + " HELP."
}

// subcommandSyntaxError is redis's addReplySubcommandSyntaxError: a
// subcommand it knows given arguments it does not take.
func subcommandSyntaxError(a [][]byte) string {
	return "ERR unknown subcommand or wrong number of arguments for '" + clip(a[1]) + "'. Try " + strings.ToUpper(string(a[0])) + " HELP."
}

func clip(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}

// errorText translates an error from the node or executor into the reply
// redis-server gives for it. name is the command, for the messages that
// quote it.
func errorText(err error, name string) string {
	var re command.ReplyError
	switch {
	case errors.As(err, &re):
		return string(re)
	case errors.Is(err, command.ErrWrongType):
		return errWrongType
	case errors.Is(err, command.ErrNotInteger):
		return errNotInteger
	case errors.Is(err, command.ErrHashNotInteger):
		return "ERR hash value is not an integer"
	case errors.Is(err, command.ErrOverflow):
		return "ERR increment or decrement would overflow"
	case errors.Is(err, command.ErrNoSuchKey):
		return "ERR no such key"
	case errors.Is(err, command.ErrOOM):
		return errOOM
	case errors.Is(err, command.ErrInvalidExpire):
		return invalidExpire(name)
	case errors.Is(err, command.ErrBadDB):
		return errDBRange
	case errors.Is(err, command.ErrNoLeader):
		return "CLUSTERDOWN no leader available, try again later"
	case errors.Is(err, command.ErrShutdown):
		return "ERR server is shutting down"
	case errors.Is(err, command.ErrRemoved), errors.Is(err, command.ErrStorageFailed):
		return "CLUSTERDOWN " + err.Error()
	}
	return "ERR " + err.Error()
}
