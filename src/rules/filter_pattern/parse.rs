//! Parser: pattern text → [`Expr`]. Hand-written recursive descent over a `Vec<char>` (so columns
//! are character columns); no indexing, recursion bounded by [`MAX_NESTING`].

use super::{
    Condition, Expr, FilterPatternError, FilterPatternErrorKind as K, Found, MAX_NESTING,
    MAX_REGEXES, Num, NumLiteral, NumOp, Segment, Selector, Test, TextPattern,
};

type R<T> = Result<T, FilterPatternError>;

/// Parses a whole pattern (`{ ... }`, surrounding whitespace allowed).
pub(super) fn parse(src: &str) -> R<Expr> {
    let mut p = Parser {
        chars: src.chars().collect(),
        pos: 0,
        depth: 0,
        regexes: 0,
    };
    p.pattern()
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    regexes: usize,
}

/// Property-name characters (the user guide: alphanumerics, `-` and `_`).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Characters of an unquoted value.
fn is_bare_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | ':' | '/' | '+')
}

/// Characters that may end an unquoted value.
fn is_value_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, ')' | '}' | '&' | '|')
}

/// Characters the CloudWatch regex subset allows (plus space, see the module's choices).
fn is_regex_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | '#' | '=' | '@' | '/' | ';' | ',' | '-' | ':' | ' ' // symbols
                | '^' | '$' | '?' | '[' | ']' | '{' | '}' | '|' | '\\' | '*' | '+' | '.' // operators
        )
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(n)).copied()
    }

    fn bump(&mut self) {
        if self.pos < self.chars.len() {
            self.pos += 1;
        }
    }

    fn found(&self) -> Found {
        self.peek().map_or(Found::End, Found::Char)
    }

    fn err_at(&self, pos: usize, kind: K) -> FilterPatternError {
        FilterPatternError {
            column: pos.saturating_add(1),
            kind,
        }
    }

    fn err(&self, kind: K) -> FilterPatternError {
        self.err_at(self.pos, kind)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars
            .get(from..to)
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// Consumes the two-character operator `c c` (`&&`, `||`) if it is next.
    fn eat_double(&mut self, c: char) -> bool {
        if self.peek() == Some(c) && self.peek_at(1) == Some(c) {
            self.bump();
            self.bump();
            true
        } else {
            false
        }
    }

    fn pattern(&mut self) -> R<Expr> {
        self.skip_ws();
        if self.peek() != Some('{') {
            return Err(self.err(K::NotAJsonPattern {
                found: self.found(),
            }));
        }
        self.bump();
        let expr = self.or_expr()?;
        self.skip_ws();
        match self.peek() {
            Some('}') => {
                self.bump();
                self.skip_ws();
                match self.peek() {
                    Some(found) => Err(self.err(K::TrailingInput { found })),
                    None => Ok(expr),
                }
            }
            Some(')') => Err(self.err(K::UnbalancedParenthesis { unclosed: false })),
            Some(found) => Err(self.err(K::UnexpectedChar {
                found,
                expected: "`&&`, `||` or `}`",
            })),
            None => Err(self.err(K::UnexpectedEnd {
                expected: "`}` to close the pattern",
            })),
        }
    }

    fn or_expr(&mut self) -> R<Expr> {
        let mut items = vec![self.and_expr()?];
        loop {
            self.skip_ws();
            if !self.eat_double('|') {
                break;
            }
            items.push(self.and_expr()?);
        }
        Ok(collapse(items, Expr::Or))
    }

    fn and_expr(&mut self) -> R<Expr> {
        let mut items = vec![self.primary()?];
        loop {
            self.skip_ws();
            if !self.eat_double('&') {
                break;
            }
            items.push(self.primary()?);
        }
        Ok(collapse(items, Expr::And))
    }

    fn primary(&mut self) -> R<Expr> {
        self.skip_ws();
        match self.peek() {
            Some('(') => {
                let open = self.pos;
                if self.depth >= MAX_NESTING {
                    return Err(self.err(K::NestingTooDeep { limit: MAX_NESTING }));
                }
                self.depth += 1;
                self.bump();
                let expr = self.or_expr()?;
                self.skip_ws();
                match self.peek() {
                    Some(')') => {
                        self.bump();
                        self.depth = self.depth.saturating_sub(1);
                        Ok(expr)
                    }
                    None | Some('}') => {
                        Err(self.err_at(open, K::UnbalancedParenthesis { unclosed: true }))
                    }
                    Some(found) => Err(self.err(K::UnexpectedChar {
                        found,
                        expected: "`&&`, `||` or `)`",
                    })),
                }
            }
            Some('$') => self.condition().map(Expr::Cond),
            None => Err(self.err(K::UnexpectedEnd {
                expected: "a selector such as `$.eventName`",
            })),
            Some(_) => Err(self.err(K::ExpectedSelector {
                found: self.found(),
            })),
        }
    }

    fn selector(&mut self) -> R<(Selector, String)> {
        let start = self.pos;
        self.bump(); // `$`
        let mut path = Vec::new();
        let bad = |p: &Parser, reason: &'static str| {
            p.err(K::BadSelector {
                selector: p.text(start, p.pos),
                reason,
            })
        };
        loop {
            match self.peek() {
                Some('.') => {
                    self.bump();
                    let name_start = self.pos;
                    while self.peek().is_some_and(is_name_char) {
                        self.bump();
                    }
                    if self.pos == name_start {
                        return Err(bad(
                            self,
                            "expected a property name (letters, digits, `-`, `_`) after `.`",
                        ));
                    }
                    path.push(Segment::Key(self.text(name_start, self.pos)));
                }
                Some('[') => {
                    if path.is_empty() {
                        return Err(bad(
                            self,
                            "an array index must follow a property, as in `$.items[0]`",
                        ));
                    }
                    self.bump();
                    if self.peek() == Some('*') {
                        return Err(bad(
                            self,
                            "the wildcard index `[*]` is not supported; name one element, as in `[0]`",
                        ));
                    }
                    let digits_start = self.pos;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.bump();
                    }
                    if self.pos == digits_start {
                        return Err(bad(self, "expected an array index (digits) inside `[...]`"));
                    }
                    let Ok(index) = self.text(digits_start, self.pos).parse::<usize>() else {
                        return Err(self.err_at(
                            digits_start,
                            K::BadSelector {
                                selector: self.text(start, self.pos),
                                reason: "the array index is too large",
                            },
                        ));
                    };
                    if self.peek() != Some(']') {
                        return Err(bad(self, "expected `]` to close the array index"));
                    }
                    self.bump();
                    path.push(Segment::Index(index));
                }
                _ => break,
            }
        }
        if path.is_empty() {
            return Err(bad(
                self,
                "a selector names at least one property after `$`, as in `$.eventName`",
            ));
        }
        Ok((Selector { path }, self.text(start, self.pos)))
    }

    fn condition(&mut self) -> R<Condition> {
        let (selector, text) = self.selector()?;
        self.skip_ws();
        let test = match self.peek() {
            Some('=') => {
                self.bump();
                self.value(NumOp::Eq, "=")?
            }
            Some('!') if self.peek_at(1) == Some('=') => {
                self.bump();
                self.bump();
                self.value(NumOp::Ne, "!=")?
            }
            Some('<') | Some('>') => {
                let less = self.peek() == Some('<');
                self.bump();
                let or_equal = self.peek() == Some('=');
                if or_equal {
                    self.bump();
                }
                match (less, or_equal) {
                    (true, false) => self.value(NumOp::Lt, "<")?,
                    (true, true) => self.value(NumOp::Le, "<=")?,
                    (false, false) => self.value(NumOp::Gt, ">")?,
                    (false, true) => self.value(NumOp::Ge, ">=")?,
                }
            }
            Some(c) if c.is_ascii_alphabetic() => self.keyword_test(text)?,
            _ => {
                return Err(self.err(K::ExpectedOperator {
                    after: text,
                    found: self.found(),
                }));
            }
        };
        Ok(Condition { selector, test })
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.bump();
        }
        self.text(start, self.pos)
    }

    /// `IS NULL`, `IS TRUE`, `IS FALSE`, `NOT EXISTS`.
    fn keyword_test(&mut self, selector_text: String) -> R<Test> {
        let start = self.pos;
        let first = self.word();
        let (after, expected): (&'static str, &'static str) = match first.as_str() {
            "IS" => ("IS", "`NULL`, `TRUE` or `FALSE`"),
            "NOT" => ("NOT", "`EXISTS`"),
            _ => {
                return Err(self.err_at(
                    start,
                    K::ExpectedOperator {
                        after: selector_text,
                        found: Found::Word(first),
                    },
                ));
            }
        };
        self.skip_ws();
        let second_start = self.pos;
        let second = self.word();
        let test = match (after, second.as_str()) {
            ("IS", "NULL") => Test::IsNull,
            ("IS", "TRUE") => Test::IsTrue,
            ("IS", "FALSE") => Test::IsFalse,
            ("NOT", "EXISTS") => Test::NotExists,
            _ => {
                let found = if second.is_empty() {
                    self.found()
                } else {
                    Found::Word(second)
                };
                return Err(self.err_at(
                    second_start,
                    K::ExpectedKeyword {
                        after,
                        expected,
                        found,
                    },
                ));
            }
        };
        Ok(test)
    }

    /// The value after an operator.
    fn value(&mut self, op: NumOp, operator: &'static str) -> R<Test> {
        self.skip_ws();
        let start = self.pos;
        let relational = !matches!(op, NumOp::Eq | NumOp::Ne);
        let negated = op == NumOp::Ne;
        match self.peek() {
            Some('"') => {
                let parts = self.quoted()?;
                if relational {
                    return Err(self.err_at(start, K::BadNumber(self.text(start, self.pos))));
                }
                Ok(Test::Text {
                    negated,
                    pattern: TextPattern::from_parts(parts),
                })
            }
            Some('%') => {
                let regex = self.regex()?;
                if relational {
                    return Err(self.err_at(start, K::BadNumber(self.text(start, self.pos))));
                }
                Ok(Test::Regex { negated, regex })
            }
            Some(c) if is_bare_char(c) => {
                while self.peek().is_some_and(is_bare_char) {
                    self.bump();
                }
                let word = self.text(start, self.pos);
                if let Some(found) = self.peek()
                    && !is_value_end(found)
                {
                    return Err(self.err(K::UnexpectedChar {
                        found,
                        expected: "the end of the value (quote values that contain other characters)",
                    }));
                }
                if let Some(literal) = number_literal(&word) {
                    Ok(Test::Number { op, literal })
                } else if relational {
                    Err(self.err_at(start, K::BadNumber(word)))
                } else {
                    Ok(Test::Text {
                        negated,
                        pattern: TextPattern::from_parts(
                            word.split('*').map(str::to_owned).collect(),
                        ),
                    })
                }
            }
            _ => Err(self.err(K::ExpectedValue {
                operator,
                found: self.found(),
            })),
        }
    }

    /// A `"..."` string, split on its unescaped `*`s.
    fn quoted(&mut self) -> R<Vec<String>> {
        let open = self.pos;
        self.bump();
        let mut parts = vec![String::new()];
        let push = |parts: &mut Vec<String>, c: char| {
            if let Some(last) = parts.last_mut() {
                last.push(c);
            }
        };
        loop {
            match self.peek() {
                None => return Err(self.err_at(open, K::UnterminatedString)),
                Some('"') => {
                    self.bump();
                    return Ok(parts);
                }
                Some('*') => {
                    self.bump();
                    parts.push(String::new());
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        None => return Err(self.err_at(open, K::UnterminatedString)),
                        Some(c @ ('"' | '\\' | '*')) => push(&mut parts, c),
                        Some(c) => {
                            push(&mut parts, '\\');
                            push(&mut parts, c);
                        }
                    }
                    self.bump();
                }
                Some(c) => {
                    push(&mut parts, c);
                    self.bump();
                }
            }
        }
    }

    /// A `%...%` regex, checked against the CloudWatch character set and compiled.
    fn regex(&mut self) -> R<regex::Regex> {
        let open = self.pos;
        self.bump();
        let body_start = self.pos;
        while self.peek() != Some('%') {
            if self.peek().is_none() {
                return Err(self.err_at(open, K::UnterminatedRegex));
            }
            self.bump();
        }
        let body = self.text(body_start, self.pos);
        self.bump(); // closing `%`
        self.regexes += 1;
        if self.regexes > MAX_REGEXES {
            return Err(self.err_at(open, K::TooManyRegexes { limit: MAX_REGEXES }));
        }
        if body.is_empty() {
            return Err(self.err_at(open, K::BadRegex("the regular expression is empty".into())));
        }
        if let Some((i, c)) = body.chars().enumerate().find(|&(_, c)| !is_regex_char(c)) {
            let reason = if c == '(' || c == ')' {
                "CloudWatch does not support parentheses (sub-patterns) in a regular expression"
                    .to_owned()
            } else {
                format!(
                    "`{}` is not allowed in a CloudWatch regular expression",
                    c.escape_debug()
                )
            };
            return Err(self.err_at(body_start.saturating_add(i), K::BadRegex(reason)));
        }
        regex::RegexBuilder::new(&body)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .build()
            .map_err(|e| self.err_at(body_start, K::BadRegex(regex_error_summary(&e))))
    }
}

/// One line from a `regex` error (its Display is a multi-line diagram).
fn regex_error_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("does not compile");
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// One item stays itself; more become `ctor(items)`.
fn collapse(mut items: Vec<Expr>, ctor: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1
        && let Some(only) = items.pop()
    {
        return only;
    }
    ctor(items)
}

impl TextPattern {
    fn from_parts(mut parts: Vec<String>) -> TextPattern {
        if parts.len() == 1
            && let Some(only) = parts.pop()
        {
            return TextPattern::Exact(only);
        }
        TextPattern::Wildcard(parts)
    }
}

/// Parses the documented number syntax: `[+-]digits[.digits][(e|E)[+-]digits]`.
pub(super) fn number_literal(text: &str) -> Option<NumLiteral> {
    let b = text.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    i = digits(i)?;
    let mut integer = true;
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
        integer = false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
        integer = false;
    }
    if i != b.len() {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    let int = if integer {
        text.parse::<i128>().ok()
    } else {
        None
    };
    Some(NumLiteral {
        text: text.to_owned(),
        num: Num { value, int },
    })
}
