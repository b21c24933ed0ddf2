package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run is the whole command, with its streams passed in so that tests can
// check exit codes and messages without starting a process.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "counter: missing command")
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	switch args[0] {
	case "server":
		return runServer(args[1:], stdout, stderr)
	case "client":
		return runClient(args[1:], stdout, stderr)
	case "demo":
		return runDemo(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "counter: unknown command %q\n", args[0])
	fmt.Fprint(stderr, topUsage)
	return exitUsage
}

const topUsage = `usage: counter <command> [flags]

commands:
  server   host one member of a counter group until SIGINT or SIGTERM
  client   increment, read, inspect or benchmark a counter group
  demo     start a 3-server cluster here and narrate election, replication and failover

Run "counter <command> -h" for a command's flags.
`

// usageError is a bad command line: reported in one line with the
// command's usage, and exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// command describes a subcommand for its usage text.
type command struct {
	name     string // "server", "client", "demo"
	synopsis string // the usage line(s) after "usage: "
	about    string // a paragraph on what it does
	fs       *flag.FlagSet
	hidden   map[string]bool // flags left out of the usage (for tests)
}

// newFlagSet returns a flag set that reports nothing itself: run prints
// errors and usage in one consistent shape.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func (c *command) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n\nflags:\n", c.synopsis, c.about)
	c.fs.VisitAll(func(f *flag.Flag) {
		if c.hidden[f.Name] {
			return
		}
		kind, text := flag.UnquoteUsage(f)
		name := dashed(f.Name)
		if kind != "" {
			name += " " + kind
		}
		fmt.Fprintf(w, "  %-26s %s", name, text)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// fail reports err the way its kind asks and returns the exit code: help
// goes to stdout with 0, a usage error to stderr with the usage and 2,
// anything else to stderr in one line with 1.
func (c *command) fail(stdout, stderr io.Writer, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		c.usage(stdout)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "counter %s: %v\n", c.name, err)
		c.usage(stderr)
		return exitUsage
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(stderr, "counter %s: %v\n", c.name, err)
		return exitInterrupted
	}
	fmt.Fprintf(stderr, "counter %s: %v\n", c.name, err)
	return exitFailure
}

var errInterrupted = errors.New("interrupted")

// negativeNumber matches positional values such as the delta of
// "incr -5", which the flag package would take for an unknown flag.
var negativeNumber = regexp.MustCompile(`^-[0-9]+$`)

// parseArgs parses flags that may appear anywhere among the positional
// arguments ("client incr 5 --peers ..." as well as "client --peers ...
// incr 5"), and returns the positional ones. "--" ends the flags. Flag
// errors come back as usage errors.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case len(a) < 2 || a[0] != '-' || negativeNumber.MatchString(a):
			pos = append(pos, a)
		default:
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			// A flag that takes a value consumes the next argument, as the
			// flag package will when it parses the collected flags.
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	return pos, nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// dashed spells a flag as the usage does: -n, --peers.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagsSet returns the names of the flags given on the command line.
func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}
