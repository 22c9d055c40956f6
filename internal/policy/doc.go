// Package policy implements the condition language shared by Detox, the
// Dealer and the enforcer rules, plus the file formats built on it: Detox
// policy files, partition definitions and enforcer rule sets.
//
// The pipeline is parse → type-check → compile:
//
//   - ParseCondition turns condition text into a typed AST (Condition) whose
//     variables, operators and right-hand values have all been checked against
//     the variable catalog (Lookup, Variables). Every problem is an *Error with
//     file:line:column, the offending text and a hint.
//   - Compile binds a Condition to a caller-chosen subject type S through
//     Bindings[S] and returns a Matcher[S] whose Match method does not
//     allocate. Regular expressions and globs are compiled once; time
//     expressions ("1 week ago") are resolved against a clock value the caller
//     passes, never time.Now.
//   - Bindings.Grouped marks variables constant per group of subjects (a
//     replica's dataset, its site) until a GroupCache is Reset: conditions
//     over one group's variables are then evaluated once per group.
//
// The language is the one of CMS Dynamo (lib/policy) with two additions: `or`
// and parentheses. docs/policy-language.md is the reference.
package policy
