package scheduler

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A sequences file is Dynamo's cron: named sequences of steps run in a
// loop. The grammar (docs/scheduler.md has examples):
//
//	# comment
//	<title> = APP [ARGS...]      define a write-enabled title
//	{title} = APP [ARGS...]      define a read-only title
//	[SEQUENCE name] [restart]    start a sequence
//	^ [N] <title> [ARGS...]      run; on failure restart the sequence from its first step
//	& [N] {title} [ARGS...]      run; on failure repeat this step
//	| [N] {title} [ARGS...]      run; on failure continue
//	WAIT SECONDS                 wait (a number, a product such as 4*3600, or a Go duration)
//	TERMINATE                    end the sequence (otherwise it loops)
//
// APP names a registered application. For compatibility with Dynamo
// files, a path such as $(DYNAMO_BASE)/exec/detox maps to the application
// named by its last element ("detox"). The definition's arguments come
// before the step's. [N] is a timeout in hours (Dynamo's unit; decimals
// allowed) or a Go duration ([90s]). A step's brackets choose the mode:
// <title> runs write-enabled and needs a <title> definition; {title} runs
// read-only, and a writer application run that way is a dry run (its plan
// is computed and counted, never applied). $(VAR) in arguments is replaced
// from the environment.

// OnFailure is what a sequence does when a step fails.
type OnFailure int

// The failure modes, by their step prefix.
const (
	FailRestart  OnFailure = iota // ^: restart the sequence from its first step
	FailRepeat                    // &: repeat the step
	FailContinue                  // |: go on with the next step
)

// String returns the step prefix of the failure mode.
func (f OnFailure) String() string {
	switch f {
	case FailRestart:
		return "^"
	case FailRepeat:
		return "&"
	default:
		return "|"
	}
}

// StepKind says what a step does.
type StepKind int

// The step kinds.
const (
	StepRun StepKind = iota
	StepWait
	StepTerminate
)

// Step is one line of a sequence.
type Step struct {
	Line    int // 1-based line in the file
	Kind    StepKind
	OnFail  OnFailure     // StepRun
	Title   string        // StepRun: the title as written
	Write   bool          // StepRun: <title> (write-enabled) rather than {title}
	App     string        // StepRun: the application the title maps to
	Args    []string      // StepRun: definition arguments, then the step's
	Timeout time.Duration // StepRun: [N], 0 if none
	Wait    time.Duration // StepWait
}

// Definition maps a title to an application.
type Definition struct {
	Line   int
	Title  string
	Writer bool // <title>
	App    string
	Args   []string
}

// Sequence is a named list of steps.
type Sequence struct {
	Name    string
	Line    int
	Restart bool // start from the first step at every server start
	Steps   []Step
}

// SequenceFile is a parsed sequences file.
type SequenceFile struct {
	Defs      map[string]Definition
	Sequences []*Sequence
}

// ParseError lists every problem found in a sequences file, each with its
// line number.
type ParseError struct {
	File string
	Errs []LineError
}

// LineError is one problem at one line.
type LineError struct {
	Line int
	Msg  string
}

// Error lists the problems one per line as FILE:LINE: message.
func (e *ParseError) Error() string {
	var b strings.Builder
	for i, le := range e.Errs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s:%d: %s", e.File, le.Line, le.Msg)
	}
	return b.String()
}

var (
	defRE     = regexp.MustCompile(`^(<[^<>{}\s]+>|\{[^<>{}\s]+\})\s*=\s*(.*)$`)
	seqRE     = regexp.MustCompile(`^\[SEQUENCE\s+([^\]\s]+)\s*\](.*)$`)
	stepRE    = regexp.MustCompile(`^([\^&|])\s*(\[[^\]]*\])?\s*(<[^<>{}\s]+>|\{[^<>{}\s]+\})(.*)$`)
	titleRE   = regexp.MustCompile(`^[A-Za-z0-9_.+:-]+$`)
	envRefRE  = regexp.MustCompile(`\$\(([^)]*)\)`)
	seqNameRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,128}$`)
)

// ParseSequences parses a sequences file. name is used in error messages;
// getenv resolves $(VAR) in arguments (nil: the process environment).
// Every problem is reported, each with its line number, in a *ParseError.
func ParseSequences(r io.Reader, name string, getenv func(string) (string, bool)) (*SequenceFile, error) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	p := &ParseError{File: name}
	var cur *Sequence
	flawed := map[*Sequence]bool{} // sequences with a bad line: "no steps" would be noise
	bad := func(line int, format string, args ...any) {
		p.Errs = append(p.Errs, LineError{line, fmt.Sprintf(format, args...)})
		if cur != nil {
			flawed[cur] = true
		}
	}
	f := &SequenceFile{Defs: map[string]Definition{}}
	seqSeen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := defRE.FindStringSubmatch(line); m != nil {
			title, writer := unbracket(m[1])
			if !titleRE.MatchString(title) {
				bad(n, "bad title %q", title)
				continue
			}
			// The application word is not expanded: only its last path
			// element matters ($(DYNAMO_BASE)/exec/detox -> detox).
			rhs := strings.Fields(m[2])
			if len(rhs) == 0 {
				bad(n, "definition of %s names no application", m[1])
				continue
			}
			args, err := splitArgs(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(m[2]), rhs[0])), getenv)
			if err != nil {
				bad(n, "%v", err)
				continue
			}
			words := append([]string{rhs[0]}, args...)
			if prev, ok := f.Defs[title]; ok {
				bad(n, "title %q already defined at line %d", title, prev.Line)
				continue
			}
			app := words[0]
			if strings.Contains(app, "/") {
				app = path.Base(app) // $(DYNAMO_BASE)/exec/detox -> detox
			}
			if err := CheckAppName(app); err != nil {
				bad(n, "application %q: want a registered application name", app)
				continue
			}
			f.Defs[title] = Definition{Line: n, Title: title, Writer: writer, App: app, Args: words[1:]}
			continue
		}
		if m := seqRE.FindStringSubmatch(line); m != nil {
			cur = &Sequence{Name: m[1], Line: n}
			switch opt := strings.TrimSpace(m[2]); opt {
			case "":
			case "restart":
				cur.Restart = true
			default:
				bad(n, "unknown sequence option %q (only \"restart\")", opt)
			}
			if !seqNameRE.MatchString(cur.Name) {
				bad(n, "bad sequence name %q", cur.Name)
			}
			if prev, ok := seqSeen[cur.Name]; ok {
				bad(n, "sequence %q already defined at line %d", cur.Name, prev)
			}
			seqSeen[cur.Name] = n
			f.Sequences = append(f.Sequences, cur)
			continue
		}
		if cur == nil {
			bad(n, "%q before any [SEQUENCE name] header (only definitions and comments may come first)", line)
			continue
		}
		switch {
		case line == "TERMINATE":
			cur.Steps = append(cur.Steps, Step{Line: n, Kind: StepTerminate})
		case strings.HasPrefix(line, "WAIT ") || strings.HasPrefix(line, "WAIT\t") || line == "WAIT":
			d, err := parseWait(strings.TrimSpace(strings.TrimPrefix(line, "WAIT")))
			if err != nil {
				bad(n, "%v", err)
				continue
			}
			cur.Steps = append(cur.Steps, Step{Line: n, Kind: StepWait, Wait: d})
		default:
			m := stepRE.FindStringSubmatch(line)
			if m == nil {
				bad(n, "cannot parse %q: want a step (^, & or | then <title> or {title}), WAIT, TERMINATE, a definition or a [SEQUENCE] header", line)
				continue
			}
			st := Step{Line: n, Kind: StepRun, OnFail: map[string]OnFailure{"^": FailRestart, "&": FailRepeat, "|": FailContinue}[m[1]]}
			if m[2] != "" {
				d, err := parseTimeout(m[2][1 : len(m[2])-1])
				if err != nil {
					bad(n, "%v", err)
					continue
				}
				st.Timeout = d
			}
			st.Title, st.Write = unbracket(m[3])
			rest := m[4]
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				bad(n, "missing space after %s", m[3])
				continue
			}
			args, err := splitArgs(rest, getenv)
			if err != nil {
				bad(n, "%v", err)
				continue
			}
			st.Args = args
			cur.Steps = append(cur.Steps, st)
		}
	}
	if err := sc.Err(); err != nil {
		bad(n+1, "read: %v", err)
	}
	// References are checked at the end: definitions may follow their use.
	cur = nil
	for _, s := range f.Sequences {
		if len(s.Steps) == 0 && !flawed[s] {
			bad(s.Line, "sequence %q has no steps", s.Name)
		}
		runs := false
		for i := range s.Steps {
			st := &s.Steps[i]
			if st.Kind != StepRun {
				continue
			}
			runs = true
			def, ok := f.Defs[st.Title]
			if !ok {
				bad(st.Line, "title %q is not defined (add a line such as {%s} = APP)", st.Title, st.Title)
				continue
			}
			if st.Write && !def.Writer {
				bad(st.Line, "<%s> runs write-enabled but line %d defines it read-only as {%s}", st.Title, def.Line, st.Title)
				continue
			}
			st.App = def.App
			st.Args = append(append([]string(nil), def.Args...), st.Args...)
		}
		if !runs && len(s.Steps) > 0 && s.Steps[len(s.Steps)-1].Kind != StepTerminate {
			bad(s.Line, "sequence %q runs no application and never terminates", s.Name)
		}
	}
	if len(p.Errs) > 0 {
		return nil, p
	}
	return f, nil
}

// LoadSequences reads and parses a sequences file.
func LoadSequences(file string) (*SequenceFile, error) {
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return ParseSequences(fh, file, nil)
}

// Check verifies the file against the registered applications: every
// title maps to a registered application, and a <title> definition maps
// to a writer. Errors carry line numbers.
func (f *SequenceFile) Check(lookup func(name string) (App, bool), file string) error {
	p := &ParseError{File: file}
	for _, d := range sortedDefs(f.Defs) {
		a, ok := lookup(d.App)
		switch {
		case !ok:
			p.Errs = append(p.Errs, LineError{d.Line, fmt.Sprintf("application %q is not registered", d.App)})
		case d.Writer && !a.Writer:
			p.Errs = append(p.Errs, LineError{d.Line, fmt.Sprintf("<%s> declares a writer but application %q is read-only (use {%s})", d.Title, d.App, d.Title)})
		}
	}
	if len(p.Errs) > 0 {
		return p
	}
	return nil
}

func sortedDefs(m map[string]Definition) []Definition {
	out := make([]Definition, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Line < out[j-1].Line; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func unbracket(s string) (title string, writer bool) {
	return s[1 : len(s)-1], s[0] == '<'
}

// parseWait accepts seconds as a number, a product of numbers
// ("4*3600"), or a Go duration ("4h").
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("WAIT needs a number of seconds")
	}
	if d, err := time.ParseDuration(s); err == nil && strings.IndexFunc(s, isUnit) >= 0 {
		if d < 0 {
			return 0, fmt.Errorf("WAIT %s: negative", s)
		}
		return d, nil
	}
	v := 1.0
	for _, part := range strings.Split(s, "*") {
		f, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil {
			return 0, fmt.Errorf("WAIT %s: not a number of seconds, a product such as 4*3600, or a duration such as 4h", s)
		}
		v *= f
	}
	if v < 0 || v > 10*365*24*3600 {
		return 0, fmt.Errorf("WAIT %s: out of range", s)
	}
	return time.Duration(v * float64(time.Second)), nil
}

func isUnit(r rune) bool { return strings.ContainsRune("hmsuµn", r) }

// parseTimeout accepts hours ("2", "0.5") or a Go duration ("90s").
func parseTimeout(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil && strings.IndexFunc(s, isUnit) >= 0 {
		if d <= 0 {
			return 0, fmt.Errorf("timeout [%s]: must be positive", s)
		}
		return d, nil
	}
	h, err := strconv.ParseFloat(s, 64)
	if err != nil || h <= 0 || h > 24*365 {
		return 0, fmt.Errorf("timeout [%s]: want hours (e.g. [2] or [0.5]) or a duration (e.g. [90s])", s)
	}
	return time.Duration(h * float64(time.Hour)), nil
}

// splitArgs splits on blanks, honouring single and double quotes, and
// replaces $(VAR) from getenv (an unset variable is an error).
func splitArgs(s string, getenv func(string) (string, bool)) ([]string, error) {
	var missing []string
	s = envRefRE.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := getenv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}
