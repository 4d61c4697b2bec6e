//! The CloudWatch Logs **JSON filter-pattern language** (`{ $.eventName = "ConsoleLogin" && ... }`),
//! as a pure, self-contained module: it owns parsing a pattern into a compiled [`FilterPattern`],
//! evaluating that against a parsed JSON record, the typed parse errors (with 1-based character
//! columns), and the `eventName` prefilter hint. It does no I/O and depends on nothing else in the
//! crate (only `serde_json`, `regex` and `thiserror`). Only JSON patterns (the ones in braces) are
//! supported; the plain-term and space-delimited pattern forms are not.
//!
//! # Language, as the CloudWatch Logs user guide documents it
//!
//! - The whole pattern is in braces: `{ CONDITION }`.
//! - A selector starts at `$` (the root) and names one property path: `$.eventName`,
//!   `$.users[0]`, `$.users[0].id`, `$.coordinates[0][1]`. Property names are ASCII letters,
//!   digits, `-` and `_`; an array index `[N]` must follow a property. Wildcard selectors such as
//!   `[*]` are not documented (CloudWatch cannot filter on "any position"), so they are rejected.
//! - `=` / `!=` compare with a string, quoted (`"..."`) or bare (`UpdateTrail`, `123.123.*`,
//!   `kms.amazonaws.com`); case-sensitive; `*` matches any text (prefix, suffix or middle).
//! - `=`, `!=`, `<`, `<=`, `>`, `>=` compare with a number: an integer or decimal with an optional
//!   `+`/`-` sign, optionally in scientific notation (`10e3`, `10e-3`, `+1000`, `55.5`).
//! - `IS NULL`, `NOT EXISTS`, `IS TRUE`, `IS FALSE`.
//! - `&&`, `||` and parentheses, with the documented precedence `()` > `&&` > `||`.
//! - `%regex%` values, unanchored unless the regex uses `^` / `$`, restricted to the documented
//!   character set (letters, digits, `_ # = @ / ; , - :` and the operators `^ $ ? [ ] { } | \ * + .`;
//!   no parentheses, no multi-byte characters), at most two per pattern (the CloudWatch quota).
//! - A selector that points to an array or an object is not a value: both `=` and `!=` (and every
//!   numeric comparison) are false there; arrays are not searched implicitly.
//!
//! # Choices where the CloudWatch documentation is silent
//!
//! 1. **Absent fields**: every comparison (`=`, `!=`, `<`, ..., `%regex%`) on a field that does not
//!    exist is false, so `{ $.x != "a" }` does not match a record without `x` (as a metric filter
//!    does not count a log event whose format does not fit). Only `NOT EXISTS` is true there.
//! 2. **Value nodes**: string and regex comparisons apply to strings and numbers only (a number is
//!    seen through its JSON text: `{ $.latency = * }` matches any number, `{ $.code = "200" }`
//!    matches `200`). On `null`, booleans, arrays and objects both `=` and `!=` are false.
//! 3. **Untyped numeric literals with `=` / `!=`**: a bare number such as `200` also equals a
//!    *string* field whose text is exactly `200` or is a number equal to 200 (`"200"`, `"200.0"`),
//!    so `{ $.recipientAccountId = 123456789012 }` matches CloudTrail's string account id, as the
//!    user guide's example implies. `!=` is the negation of that on strings and numbers.
//! 4. **Relational operators** (`<`, `<=`, `>`, `>=`) need a JSON number field; on a string (even
//!    `"500"`) they are false. Their value must be a bare number: `> "5"` and `> abc` are parse
//!    errors. Integers compare exactly (no float rounding), others as `f64`.
//! 5. **Wildcards**: `*` is a wildcard anywhere in the value, quoted or bare (the CDK's
//!    `exists()` emits `= "*"`); an older user-guide revision said a middle `*` is literal, this
//!    module follows the current behaviour of a wildcard anywhere. In a quoted string `\*` is a
//!    literal asterisk, `\"` a quote, `\\` a backslash; any other `\x` stays as the two characters.
//! 6. **Bare (unquoted) values** may hold ASCII letters, digits and `_ - . * : / +`; anything else
//!    must be quoted (the guide asks for quotes around `@`, `$`, `\` and non-ASCII text).
//! 7. **Keywords** (`IS`, `NULL`, `TRUE`, `FALSE`, `NOT`, `EXISTS`) are upper-case only, as
//!    documented; whitespace between a selector and its operator is optional (`$.a=1`).
//! 8. **Regex**: a space is also accepted inside `%...%` (the CDK documents
//!    `regexValue('$.message', '=', 'bind: address already in use')`); the regex is compiled by the
//!    `regex` crate (so `?` means "zero or one", not the guide's "zero or more"). An empty `%%` is
//!    an error.
//! 9. **Limits**: parentheses nest at most [`MAX_NESTING`] deep and a pattern holds at most
//!    [`MAX_REGEXES`] regexes; beyond either, parsing fails instead of recursing or compiling more.

use std::fmt;

mod eval;
mod parse;
#[cfg(test)]
mod tests;

/// Deepest parenthesis nesting [`FilterPattern::parse`] accepts; deeper input is an error.
pub const MAX_NESTING: usize = 64;

/// Most `%regex%` values one pattern may contain (the CloudWatch Logs quota for JSON patterns).
pub const MAX_REGEXES: usize = 2;

/// A compiled CloudWatch Logs JSON filter pattern: parse once with [`FilterPattern::parse`], then
/// evaluate many records with [`FilterPattern::matches`].
#[derive(Clone, Debug)]
pub struct FilterPattern {
    source: String,
    expr: Expr,
}

impl FilterPattern {
    /// Parses and compiles a JSON filter pattern such as
    /// `{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS }`.
    ///
    /// Never panics; any input that is not a valid JSON pattern gives an error naming the
    /// 1-based character column where it went wrong.
    pub fn parse(pattern: &str) -> Result<FilterPattern, FilterPatternError> {
        let expr = parse::parse(pattern)?;
        Ok(FilterPattern {
            source: pattern.to_owned(),
            expr,
        })
    }

    /// Whether the record (a parsed JSON log event, e.g. one CloudTrail record) matches.
    pub fn matches(&self, record: &serde_json::Value) -> bool {
        self.expr.eval(record)
    }

    /// `eventName` literals the pattern requires, for a prefilter: `Some(names)` when every match
    /// needs `$.eventName` equal to one of these exact (no wildcard) strings; `None` otherwise.
    ///
    /// The names are sorted and unique. `Some` of an empty list means no record can match
    /// (e.g. `$.eventName = A && $.eventName = B`).
    pub fn required_event_names(&self) -> Option<Vec<String>> {
        eval::required_event_names(&self.expr).map(|names| names.into_iter().collect())
    }

    /// What every match needs, as a tree a prefilter can read: which fields must hold
    /// which exact strings, which prefixes and suffixes, or be present at all.
    pub fn requirement(&self) -> Requirement {
        eval::requirement(&self.expr)
    }

    /// The top-level record keys the pattern reads.
    pub fn top_level_keys(&self) -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::new();
        eval::top_level_keys(&self.expr, &mut keys);
        keys
    }

    /// The pattern text exactly as given to [`FilterPattern::parse`].
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// A necessary condition of a pattern, for prefilters: what a record must have for the
/// pattern to have any chance to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing cheap to say.
    Any,
    /// The field at `path` must be a string equal to `value` (case-sensitive), or,
    /// with `value` `None`, must be present with a non-null value.
    Field {
        /// Object keys from the root (`["userIdentity", "type"]`).
        path: Vec<String>,
        /// The exact string, or `None` for "present".
        value: Option<String>,
    },
    /// The field at `path` must be a string (or a number, read as its JSON text) that
    /// starts with `prefix` and ends with `suffix` (case-sensitive): a `*` wildcard value.
    Like {
        /// Object keys from the root.
        path: Vec<String>,
        /// The text before the value's first wildcard (may be empty).
        prefix: String,
        /// The text after the value's last wildcard (may be empty).
        suffix: String,
    },
    /// Every item must hold.
    All(Vec<Requirement>),
    /// Some item must hold.
    AnyOf(Vec<Requirement>),
}

/// Why a filter pattern did not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {kind}")]
pub struct FilterPatternError {
    /// 1-based character (not byte) column of the problem in the pattern text.
    pub column: usize,
    /// What went wrong.
    pub kind: FilterPatternErrorKind,
}

/// What the parser found where it expected something else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A single character.
    Char(char),
    /// A word (e.g. a misspelt keyword).
    Word(String),
    /// The end of the pattern.
    End,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Char(c) => write!(f, "`{}`", c.escape_debug()),
            Found::Word(w) => write!(f, "`{}`", w.escape_debug()),
            Found::End => f.write_str("the end of the pattern"),
        }
    }
}

/// The kinds of filter-pattern parse errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterPatternErrorKind {
    /// The pattern does not start with `{`: it is empty, or a text / space-delimited pattern.
    #[error("not a JSON filter pattern: expected `{{` at the start, found {found}")]
    NotAJsonPattern {
        /// What was there instead of `{`.
        found: Found,
    },
    /// The pattern ended early.
    #[error("unexpected end of the pattern, expected {expected}")]
    UnexpectedEnd {
        /// What should have followed.
        expected: &'static str,
    },
    /// A character that cannot appear here.
    #[error("unexpected `{}`, expected {expected}", found.escape_debug())]
    UnexpectedChar {
        /// The offending character.
        found: char,
        /// What would have been valid here.
        expected: &'static str,
    },
    /// Text after the closing `}`.
    #[error("unexpected `{}` after the closing `}}`", found.escape_debug())]
    TrailingInput {
        /// The first character after the closing brace.
        found: char,
    },
    /// A condition must start with a selector (`$...`).
    #[error("expected a selector such as `$.eventName`, found {found}")]
    ExpectedSelector {
        /// What was there instead.
        found: Found,
    },
    /// A malformed selector.
    #[error("invalid selector `{selector}`: {reason}")]
    BadSelector {
        /// The selector text up to the problem.
        selector: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No comparison operator after a selector.
    #[error("expected a comparison operator after `{after}`, found {found}")]
    ExpectedOperator {
        /// The selector.
        after: String,
        /// What was there instead.
        found: Found,
    },
    /// `IS` / `NOT` not followed by a valid keyword.
    #[error("expected {expected} after `{after}`, found {found}")]
    ExpectedKeyword {
        /// The keyword before (`IS` or `NOT`).
        after: &'static str,
        /// The valid keywords.
        expected: &'static str,
        /// What was there instead.
        found: Found,
    },
    /// No value after an operator.
    #[error("expected a value after `{operator}`, found {found}")]
    ExpectedValue {
        /// The operator.
        operator: &'static str,
        /// What was there instead.
        found: Found,
    },
    /// A `"` string without its closing quote (the column is the opening quote's).
    #[error("unterminated string: no closing `\"`")]
    UnterminatedString,
    /// A `%` regex without its closing `%` (the column is the opening `%`'s).
    #[error("unterminated regular expression: no closing `%`")]
    UnterminatedRegex,
    /// A regex that is empty, uses a character CloudWatch does not allow, or does not compile.
    #[error("invalid regular expression: {0}")]
    BadRegex(String),
    /// A numeric comparison (`<`, `<=`, `>`, `>=`) whose value is not a number.
    #[error("expected a number for a numeric comparison, found `{0}`")]
    BadNumber(String),
    /// A `(` never closed (column of the `(`), or a `)` without its `(`.
    #[error("{}", if *unclosed { "`(` is never closed" } else { "`)` has no matching `(`" })]
    UnbalancedParenthesis {
        /// True for an unclosed `(`, false for a stray `)`.
        unclosed: bool,
    },
    /// Parentheses nested deeper than [`MAX_NESTING`].
    #[error("parentheses nested deeper than {limit}")]
    NestingTooDeep {
        /// The limit ([`MAX_NESTING`]).
        limit: usize,
    },
    /// More than [`MAX_REGEXES`] regexes in one pattern.
    #[error("more than {limit} regular expressions in one pattern (the CloudWatch Logs quota)")]
    TooManyRegexes {
        /// The limit ([`MAX_REGEXES`]).
        limit: usize,
    },
}

// ---- compiled form (shared by parse.rs and eval.rs) ----

/// A boolean expression over conditions; `And` / `Or` hold at least two items.
#[derive(Clone, Debug)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cond(Condition),
}

/// One `SELECTOR test` condition.
#[derive(Clone, Debug)]
struct Condition {
    selector: Selector,
    test: Test,
}

/// A pre-parsed selector path (the root `$` is implicit).
#[derive(Clone, Debug)]
struct Selector {
    path: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Clone, Debug)]
enum Test {
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
    /// `=` (negated: `!=`) with a string value, quoted or bare.
    Text {
        negated: bool,
        pattern: TextPattern,
    },
    /// `=` (negated: `!=`) with a `%regex%` value.
    Regex {
        negated: bool,
        regex: regex::Regex,
    },
    /// Any operator with a bare numeric value.
    Number {
        op: NumOp,
        literal: NumLiteral,
    },
}

/// A string value, pre-split on its unescaped `*` wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
enum TextPattern {
    /// No wildcard: the whole value must be equal.
    Exact(String),
    /// The literal parts between wildcards (at least two; first is a prefix, last a suffix).
    Wildcard(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A number, kept exact when it is an integer.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Num {
    value: f64,
    int: Option<i128>,
}

/// A numeric value as written in the pattern.
#[derive(Clone, Debug)]
struct NumLiteral {
    text: String,
    num: Num,
}
