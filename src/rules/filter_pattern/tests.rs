//! Parser and evaluator tests: every construct, errors with their columns, the documented
//! examples, the 14 CIS (Security Hub CloudWatch.1-14) patterns, and a no-panic sweep.

use serde_json::{Value, json};

use super::{
    Expr, FilterPattern, FilterPatternError, FilterPatternErrorKind as K, Found, MAX_NESTING,
    NumOp, Segment, Test, TextPattern,
};

fn p(pattern: &str) -> FilterPattern {
    match FilterPattern::parse(pattern) {
        Ok(p) => p,
        Err(e) => panic!("{pattern:?} should parse: {e}"),
    }
}

fn m(pattern: &str, record: &Value) -> bool {
    p(pattern).matches(record)
}

fn err(pattern: &str) -> FilterPatternError {
    match FilterPattern::parse(pattern) {
        Ok(_) => panic!("{pattern:?} should not parse"),
        Err(e) => e,
    }
}

fn assert_err(pattern: &str, column: usize, kind: K) {
    assert_eq!(
        err(pattern),
        FilterPatternError { column, kind },
        "{pattern:?}"
    );
}

/// The single condition of a one-condition pattern.
fn cond(pattern: &str) -> (Vec<Segment>, Test) {
    match p(pattern).expr {
        Expr::Cond(c) => (c.selector.path, c.test),
        other => panic!("{pattern:?} is not one condition: {other:?}"),
    }
}

fn key(k: &str) -> Segment {
    Segment::Key(k.to_owned())
}

/// The user guide's first example event.
fn doc_event() -> Value {
    json!({
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": null,
        "ThisFlag": true
    })
}

/// The user guide's compound-conditions example event.
fn doc_compound_event() -> Value {
    json!({
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"}
        ],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]]
    })
}

// ---------------------------------------------------------------- parser: structure

#[test]
fn parses_selectors_into_segments() {
    assert_eq!(cond("{ $.a = 1 }").0, vec![key("a")]);
    assert_eq!(cond("{ $.a.b = 1 }").0, vec![key("a"), key("b")]);
    assert_eq!(cond("{ $.a[0] = 1 }").0, vec![key("a"), Segment::Index(0)]);
    assert_eq!(
        cond("{ $.a[0].b = 1 }").0,
        vec![key("a"), Segment::Index(0), key("b")]
    );
    assert_eq!(
        cond("{ $.a.b[1][2] = 1 }").0,
        vec![key("a"), key("b"), Segment::Index(1), Segment::Index(2)]
    );
    assert_eq!(
        cond("{ $.x-y_Z9 = 1 }").0,
        vec![key("x-y_Z9")],
        "`-` and `_` are property characters"
    );
}

#[test]
fn parses_quoted_and_bare_strings() {
    for pattern in [
        r#"{ $.a = "UpdateTrail" }"#,
        "{ $.a = UpdateTrail }",
        "{$.a=UpdateTrail}",
    ] {
        let (_, test) = cond(pattern);
        assert!(
            matches!(test, Test::Text { negated: false, pattern: TextPattern::Exact(ref s) } if s == "UpdateTrail"),
            "{pattern}: {test:?}"
        );
    }
    let (_, test) = cond(r#"{ $.a != "with space" }"#);
    assert!(
        matches!(test, Test::Text { negated: true, pattern: TextPattern::Exact(ref s) } if s == "with space")
    );
    let (_, test) = cond("{ $.eventSource = kms.amazonaws.com }");
    assert!(
        matches!(test, Test::Text { pattern: TextPattern::Exact(ref s), .. } if s == "kms.amazonaws.com")
    );
}

#[test]
fn parses_wildcards_into_literal_parts() {
    let parts = |pattern: &str| match cond(pattern).1 {
        Test::Text {
            pattern: TextPattern::Wildcard(parts),
            ..
        } => parts,
        other => panic!("{pattern}: {other:?}"),
    };
    assert_eq!(parts("{ $.a = *Event }"), ["", "Event"]);
    assert_eq!(parts("{ $.a = Event* }"), ["Event", ""]);
    assert_eq!(parts("{ $.a = Ev*ent }"), ["Ev", "ent"]);
    assert_eq!(parts(r#"{ $.a = "*x*y" }"#), ["", "x", "y"]);
    assert_eq!(parts("{ $.a = 123.123.* }"), ["123.123.", ""]);
    assert_eq!(parts("{ $.a = * }"), ["", ""]);
}

#[test]
fn parses_string_escapes() {
    let exact = |pattern: &str| match cond(pattern).1 {
        Test::Text {
            pattern: TextPattern::Exact(s),
            ..
        } => s,
        other => panic!("{pattern}: {other:?}"),
    };
    assert_eq!(exact(r#"{ $.a = "say \"hi\"" }"#), r#"say "hi""#);
    assert_eq!(
        exact(r#"{ $.a = "a\*b" }"#),
        "a*b",
        "`\\*` is a literal star"
    );
    assert_eq!(exact(r#"{ $.a = "a\\b" }"#), r"a\b");
    assert_eq!(
        exact(r#"{ $.a = "C:\temp" }"#),
        r"C:\temp",
        "other escapes stay"
    );
    assert_eq!(exact(r#"{ $.a = "" }"#), "");
    assert_eq!(exact(r#"{ $.a = "ünï €" }"#), "ünï €");
}

#[test]
fn parses_numbers_for_every_operator() {
    let cases = [
        ("{ $.a = 400 }", NumOp::Eq, 400.0),
        ("{ $.a != 500 }", NumOp::Ne, 500.0),
        ("{ $.a < 10e3 }", NumOp::Lt, 10e3),
        ("{ $.a <= 55.5 }", NumOp::Le, 55.5),
        ("{ $.a > +1000 }", NumOp::Gt, 1000.0),
        ("{ $.a >= -2 }", NumOp::Ge, -2.0),
        ("{ $.a < 10e-3 }", NumOp::Lt, 10e-3),
        ("{ $.a>=1E+2 }", NumOp::Ge, 100.0),
    ];
    for (pattern, op, value) in cases {
        match cond(pattern).1 {
            Test::Number { op: got, literal } => {
                assert_eq!(got, op, "{pattern}");
                assert_eq!(literal.num.value, value, "{pattern}");
            }
            other => panic!("{pattern}: {other:?}"),
        }
    }
}

#[test]
fn parses_keyword_tests() {
    assert!(matches!(cond("{ $.a IS NULL }").1, Test::IsNull));
    assert!(matches!(cond("{ $.a IS TRUE }").1, Test::IsTrue));
    assert!(matches!(cond("{ $.a IS FALSE }").1, Test::IsFalse));
    assert!(matches!(cond("{ $.a NOT EXISTS }").1, Test::NotExists));
    assert!(matches!(cond("{ $.a   IS\tNULL }").1, Test::IsNull));
}

#[test]
fn parses_regex_values() {
    assert!(matches!(
        cond("{ $.a = %^Delete% }").1,
        Test::Regex { negated: false, .. }
    ));
    assert!(matches!(
        cond("{ $.a != %[hc]at$% }").1,
        Test::Regex { negated: true, .. }
    ));
    assert!(matches!(
        cond(r"{ $.a = %10\.10\.0\.1% }").1,
        Test::Regex { .. }
    ));
    assert!(matches!(cond("{ $.a = %a{3,5}% }").1, Test::Regex { .. }));
    assert!(matches!(
        cond("{ $.m = %bind: address already in use% }").1,
        Test::Regex { .. }
    ));
}

#[test]
fn and_binds_tighter_than_or() {
    let expr = p("{ $.a = 1 || $.b = 2 && $.c = 3 }").expr;
    let Expr::Or(items) = expr else {
        panic!("top level should be ||: {expr:?}")
    };
    assert_eq!(items.len(), 2);
    assert!(matches!(items[0], Expr::Cond(_)));
    assert!(matches!(&items[1], Expr::And(v) if v.len() == 2));

    let expr = p("{ ($.a = 1 || $.b = 2) && $.c = 3 }").expr;
    let Expr::And(items) = expr else {
        panic!("top level should be &&: {expr:?}")
    };
    assert!(matches!(&items[0], Expr::Or(v) if v.len() == 2));
}

#[test]
fn chains_flatten_and_whitespace_is_free() {
    let Expr::Or(items) = p("{$.a=1||$.b=2||$.c=3||$.d=4}").expr else {
        panic!()
    };
    assert_eq!(items.len(), 4);
    let Expr::And(items) = p("\n {\t$.a = 1\n&&\n$.b = 2 } \n").expr else {
        panic!()
    };
    assert_eq!(items.len(), 2);
    assert!(matches!(p("{ ((($.a = 1))) }").expr, Expr::Cond(_)));
}

#[test]
fn source_is_kept_verbatim() {
    let text = "  {$.a = 1}  ";
    assert_eq!(p(text).source(), text);
}

#[test]
fn nesting_up_to_the_limit_parses() {
    let pattern = format!(
        "{{ {}$.a = 1{} }}",
        "(".repeat(MAX_NESTING),
        ")".repeat(MAX_NESTING)
    );
    assert!(p(&pattern).matches(&json!({"a": 1})));
}

// ---------------------------------------------------------------- parser: errors

#[test]
fn error_not_a_json_pattern() {
    assert_err("", 1, K::NotAJsonPattern { found: Found::End });
    assert_err("   ", 4, K::NotAJsonPattern { found: Found::End });
    assert_err(
        "ERROR",
        1,
        K::NotAJsonPattern {
            found: Found::Char('E'),
        },
    );
    assert_err(
        "$.a = 1",
        1,
        K::NotAJsonPattern {
            found: Found::Char('$'),
        },
    );
    assert_err(
        "[ip, user]",
        1,
        K::NotAJsonPattern {
            found: Found::Char('['),
        },
    );
}

#[test]
fn error_expected_selector() {
    assert_err(
        "{ }",
        3,
        K::ExpectedSelector {
            found: Found::Char('}'),
        },
    );
    assert_err(
        "{ a = 1 }",
        3,
        K::ExpectedSelector {
            found: Found::Char('a'),
        },
    );
    assert_err(
        "{ $.a = 1 && }",
        14,
        K::ExpectedSelector {
            found: Found::Char('}'),
        },
    );
    assert_err(
        "{ () }",
        4,
        K::ExpectedSelector {
            found: Found::Char(')'),
        },
    );
    assert_err(
        "{",
        2,
        K::UnexpectedEnd {
            expected: "a selector such as `$.eventName`",
        },
    );
}

#[test]
fn error_bad_selector() {
    let bad = |pattern: &str, column: usize, selector: &str| {
        let e = err(pattern);
        assert_eq!(e.column, column, "{pattern}: {e}");
        assert!(
            matches!(&e.kind, K::BadSelector { selector: s, .. } if s == selector),
            "{pattern}: {e:?}"
        );
    };
    bad("{ $ = 1 }", 4, "$");
    bad("{ $. = 1 }", 5, "$.");
    bad("{ $[0] = 1 }", 4, "$");
    bad("{ $.a[*] = 1 }", 7, "$.a[");
    bad("{ $.a[] = 1 }", 7, "$.a[");
    bad("{ $.a[x] = 1 }", 7, "$.a[");
    bad("{ $.a[1 = 1 }", 8, "$.a[1");
    bad(
        "{ $.a[99999999999999999999999] = 1 }",
        7,
        "$.a[99999999999999999999999",
    );
    bad("{ $..a = 1 }", 5, "$.");
}

#[test]
fn error_expected_operator() {
    assert_err(
        "{ $.eventName }",
        15,
        K::ExpectedOperator {
            after: "$.eventName".into(),
            found: Found::Char('}'),
        },
    );
    assert_err(
        "{ $.a@b = 1 }",
        6,
        K::ExpectedOperator {
            after: "$.a".into(),
            found: Found::Char('@'),
        },
    );
    assert_err(
        "{ $.a EXISTS }",
        7,
        K::ExpectedOperator {
            after: "$.a".into(),
            found: Found::Word("EXISTS".into()),
        },
    );
    assert_err(
        "{ $.a is null }",
        7,
        K::ExpectedOperator {
            after: "$.a".into(),
            found: Found::Word("is".into()),
        },
    );
    assert_err(
        "{ $.a ! 1 }",
        7,
        K::ExpectedOperator {
            after: "$.a".into(),
            found: Found::Char('!'),
        },
    );
}

#[test]
fn error_expected_keyword() {
    assert_err(
        "{ $.a IS MAYBE }",
        10,
        K::ExpectedKeyword {
            after: "IS",
            expected: "`NULL`, `TRUE` or `FALSE`",
            found: Found::Word("MAYBE".into()),
        },
    );
    assert_err(
        "{ $.a NOT THERE }",
        11,
        K::ExpectedKeyword {
            after: "NOT",
            expected: "`EXISTS`",
            found: Found::Word("THERE".into()),
        },
    );
    assert_err(
        "{ $.a IS }",
        10,
        K::ExpectedKeyword {
            after: "IS",
            expected: "`NULL`, `TRUE` or `FALSE`",
            found: Found::Char('}'),
        },
    );
}

#[test]
fn error_expected_value() {
    assert_err(
        "{ $.eventName = }",
        17,
        K::ExpectedValue {
            operator: "=",
            found: Found::Char('}'),
        },
    );
    assert_err(
        "{ $.a == 1 }",
        8,
        K::ExpectedValue {
            operator: "=",
            found: Found::Char('='),
        },
    );
    assert_err(
        "{ $.a != @x }",
        10,
        K::ExpectedValue {
            operator: "!=",
            found: Found::Char('@'),
        },
    );
    assert_err(
        "{ $.a >=",
        9,
        K::ExpectedValue {
            operator: ">=",
            found: Found::End,
        },
    );
}

#[test]
fn error_unexpected_char_in_and_after_values() {
    assert_err(
        "{ $.a = a@b }",
        10,
        K::UnexpectedChar {
            found: '@',
            expected: "the end of the value (quote values that contain other characters)",
        },
    );
    assert_err(
        "{ $.a = 1 & $.b = 2 }",
        11,
        K::UnexpectedChar {
            found: '&',
            expected: "`&&`, `||` or `}`",
        },
    );
    assert_err(
        "{ $.a = 1 $.b = 2 }",
        11,
        K::UnexpectedChar {
            found: '$',
            expected: "`&&`, `||` or `}`",
        },
    );
    assert_err(
        "{ ($.a = 1 $.b = 2) }",
        12,
        K::UnexpectedChar {
            found: '$',
            expected: "`&&`, `||` or `)`",
        },
    );
    assert_err("{ $.a = 1 } x", 13, K::TrailingInput { found: 'x' });
    assert_err("{ $.a = 1 }}", 12, K::TrailingInput { found: '}' });
}

#[test]
fn error_unterminated() {
    assert_err(r#"{ $.a = "abc }"#, 9, K::UnterminatedString);
    assert_err(r#"{ $.a = "abc\"#, 9, K::UnterminatedString);
    assert_err("{ $.a = %abc }", 9, K::UnterminatedRegex);
    assert_err(
        "{ $.a = 1",
        10,
        K::UnexpectedEnd {
            expected: "`}` to close the pattern",
        },
    );
}

#[test]
fn error_parentheses() {
    assert_err(
        "{ ($.a = 1 }",
        3,
        K::UnbalancedParenthesis { unclosed: true },
    );
    assert_err(
        "{ (($.a = 1) }",
        3,
        K::UnbalancedParenthesis { unclosed: true },
    );
    assert_err("{ ($.a = 1", 3, K::UnbalancedParenthesis { unclosed: true });
    assert_err(
        "{ $.a = 1) }",
        10,
        K::UnbalancedParenthesis { unclosed: false },
    );
}

#[test]
fn error_nesting_too_deep_without_recursing_further() {
    // The 65th `(` is at column 2 + 64.
    let pattern = format!("{{{}", "(".repeat(100_000));
    assert_err(
        &pattern,
        2 + MAX_NESTING,
        K::NestingTooDeep { limit: MAX_NESTING },
    );
}

#[test]
fn error_bad_number() {
    assert_err("{ $.a > abc }", 9, K::BadNumber("abc".into()));
    assert_err(r#"{ $.a > "5" }"#, 9, K::BadNumber("\"5\"".into()));
    assert_err("{ $.a <= 1.2.3 }", 10, K::BadNumber("1.2.3".into()));
    assert_err("{ $.a < 5* }", 9, K::BadNumber("5*".into()));
    assert_err("{ $.a >= %5% }", 10, K::BadNumber("%5%".into()));
}

#[test]
fn error_bad_regex() {
    let bad = |pattern: &str, column: usize| {
        let e = err(pattern);
        assert_eq!(e.column, column, "{pattern}: {e}");
        assert!(matches!(e.kind, K::BadRegex(_)), "{pattern}: {e:?}");
    };
    bad("{ $.a = %a(b)% }", 11); // parentheses are not supported
    bad("{ $.a = %something!% }", 19); // the guide's own example of a rejected `!`
    bad("{ $.a = %é% }", 10); // multi-byte
    bad("{ $.a = %% }", 9); // empty
    bad("{ $.a = %a{2% }", 10); // does not compile
    bad("{ $.a = %[a% }", 10);
    assert_err(
        "{ $.a = %x% && $.b = %y% && $.c = %z% }",
        35,
        K::TooManyRegexes { limit: 2 },
    );
}

#[test]
fn error_display_names_column_and_what_was_found() {
    assert_eq!(
        err("{ $.eventName }").to_string(),
        "column 15: expected a comparison operator after `$.eventName`, found `}`"
    );
    assert_eq!(
        err("").to_string(),
        "column 1: not a JSON filter pattern: expected `{` at the start, found the end of the pattern"
    );
    assert_eq!(
        err("{ $.a[*] = 1 }").to_string(),
        "column 7: invalid selector `$.a[`: the wildcard index `[*]` is not supported; name one element, as in `[0]`"
    );
    assert_eq!(
        err("{ ($.a = 1 }").to_string(),
        "column 3: `(` is never closed"
    );
    assert_eq!(
        err("{ $.a = %a(b)% }").to_string(),
        "column 11: invalid regular expression: CloudWatch does not support parentheses (sub-patterns) in a regular expression"
    );
    assert!(
        err("{ $.a = %a{2% }")
            .to_string()
            .starts_with("column 10: invalid regular expression: ")
    );
    assert_eq!(
        err("{ $.a = \"x\ty").to_string(),
        "column 9: unterminated string: no closing `\"`"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_err(
        r#"{ $.a = "ééé" && x }"#,
        18,
        K::ExpectedSelector {
            found: Found::Char('x'),
        },
    );
}

// ---------------------------------------------------------------- evaluator

#[test]
fn documented_examples_match() {
    let event = doc_event();
    for pattern in [
        r#"{ $.eventType = "UpdateTrail" }"#,
        "{ $.sourceIPAddress != 123.123.* }",
        r#"{ $.arrayKey[0] = "value" }"#,
        "{ $.objectList[1].id = 2 }",
        "{ $.SomeObject IS NULL }",
        "{ $.SomeOtherObject NOT EXISTS }",
        "{ $.ThisFlag IS TRUE }",
    ] {
        assert!(m(pattern, &event), "{pattern}");
    }
}

#[test]
fn documented_compound_examples() {
    let event = doc_compound_event();
    assert!(m(
        r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#,
        &event
    ));
    assert!(!m(
        r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#,
        &event
    ));
    assert!(m(
        r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }"#,
        &event
    ));
    assert!(!m(
        r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }"#,
        &event
    ));
    assert!(m("{ $.coordinates[2][0] = 7 }", &event));
    assert!(m("{ $.foo = bar || $.foo = baz }", &json!({"foo": "baz"})));
}

#[test]
fn strings_are_exact_and_case_sensitive() {
    let r = json!({"a": "UpdateTrail"});
    assert!(m("{ $.a = UpdateTrail }", &r));
    assert!(!m("{ $.a = updatetrail }", &r));
    assert!(!m("{ $.a = Update }", &r), "no substring match");
    assert!(m("{ $.a != Update }", &r));
    assert!(!m("{ $.a != UpdateTrail }", &r));
    assert!(m(r#"{ $.a = "" }"#, &json!({"a": ""})));
}

#[test]
fn wildcards_match_prefix_suffix_middle() {
    let r = |s: &str| json!({ "a": s });
    assert!(m("{ $.a = *Event }", &r("PutEvent")));
    assert!(!m("{ $.a = *Event }", &r("EventPut")));
    assert!(m("{ $.a = Event* }", &r("EventName")));
    assert!(m("{ $.a = Ev*ent }", &r("Event")));
    assert!(m("{ $.a = Ev*ent }", &r("Ev-some-ent")));
    assert!(
        !m("{ $.a = Ev*ent }", &r("Evnt")),
        "prefix and suffix must not overlap"
    );
    assert!(m("{ $.a = *a*b*c* }", &r("xxaxxbxxcxx")));
    assert!(!m("{ $.a = *a*b*c* }", &r("cba")));
    assert!(m("{ $.a = a**b }", &r("ab")));
    assert!(m(r#"{ $.a = "*" }"#, &r("")));
    assert!(
        !m(r#"{ $.a = "a\*b" }"#, &r("axxb")),
        "escaped star is literal"
    );
    assert!(m(r#"{ $.a = "a\*b" }"#, &r("a*b")));
    assert!(m("{ $.a != 123.123.* }", &r("10.0.0.1")));
    assert!(!m("{ $.a != 123.123.* }", &r("123.123.9.9")));
    assert!(m(r#"{ $.a = "*ü*" }"#, &r("tschüss")));
}

#[test]
fn numbers_compare_numerically() {
    let r = json!({"latency": 750, "numbers": [5, 0.001], "neg": -3, "big": 9007199254740993_u64,
                   "processes": [{}, {}, {}, {}, {"averageRuntime": 55.5}]});
    assert!(m("{ $.latency >= 500 }", &r));
    assert!(m("{ $.latency > +500 }", &r));
    assert!(!m("{ $.latency < 500 }", &r));
    assert!(m("{ $.latency <= 750 }", &r));
    assert!(m("{ $.latency = 750.0 }", &r));
    assert!(m("{ $.latency = 7.5e2 }", &r));
    assert!(m("{ $.latency != 751 }", &r));
    assert!(!m("{ $.latency != 750 }", &r));
    assert!(m("{ $.numbers[0] < 10e3 }", &r));
    assert!(!m("{ $.numbers[1] < 10e-4 }", &r));
    assert!(m("{ $.numbers[1] < 10e-3 }", &r));
    assert!(m("{ $.processes[4].averageRuntime <= 55.5 }", &r));
    assert!(m("{ $.neg < -2 }", &r));
    // Integers compare exactly, beyond f64 precision.
    assert!(m("{ $.big = 9007199254740993 }", &r));
    assert!(!m("{ $.big = 9007199254740992 }", &r));
    assert!(m("{ $.big > 9007199254740992 }", &r));
}

#[test]
fn relational_comparison_on_a_non_number_is_false() {
    let r = json!({"s": "500", "b": true, "n": null, "arr": [600], "o": {"x": 1}});
    for sel in ["s", "b", "n", "arr", "o", "missing"] {
        for op in ["<", "<=", ">", ">="] {
            let pattern = format!("{{ $.{sel} {op} 100 }}");
            assert!(!m(&pattern, &r), "{pattern}");
        }
    }
}

#[test]
fn null_true_false_and_exists_tests() {
    let r = json!({"n": null, "t": true, "f": false, "s": "null", "z": 0, "arr": [], "o": {}});
    assert!(m("{ $.n IS NULL }", &r));
    assert!(!m("{ $.s IS NULL }", &r), "the string \"null\" is not null");
    assert!(!m("{ $.missing IS NULL }", &r), "absent is not null");
    assert!(m("{ $.t IS TRUE }", &r));
    assert!(!m("{ $.t IS FALSE }", &r));
    assert!(m("{ $.f IS FALSE }", &r));
    assert!(!m("{ $.z IS FALSE }", &r), "0 is not false");
    assert!(!m("{ $.missing IS TRUE }", &r));
    assert!(m("{ $.missing NOT EXISTS }", &r));
    assert!(m("{ $.o.x NOT EXISTS }", &r));
    assert!(
        m("{ $.s.deeper NOT EXISTS }", &r),
        "a path through a string does not exist"
    );
    assert!(m("{ $.arr[0] NOT EXISTS }", &r));
    for present in ["n", "t", "f", "s", "z", "arr", "o"] {
        assert!(
            !m(&format!("{{ $.{present} NOT EXISTS }}"), &r),
            "{present}"
        );
    }
}

#[test]
fn selector_on_array_or_object_matches_neither_eq_nor_ne() {
    // The guide: `{$.users = 1}` and `{$.users != 1}` both fail when users is an array.
    let r = json!({"users": [1, 2, 3], "obj": {"a": 1}});
    for pattern in [
        "{ $.users = 1 }",
        "{ $.users != 1 }",
        "{ $.users = * }",
        "{ $.users != x }",
        "{ $.obj = * }",
        "{ $.obj != 1 }",
        "{ $.users = %1% }",
        "{ $.users != %1% }",
    ] {
        assert!(!m(pattern, &r), "{pattern}");
    }
    assert!(m("{ $.users[2] = 3 }", &r));
}

#[test]
fn index_paths_need_arrays() {
    let r = json!({"arrayKey": "not an array", "list": [{"id": 1}, "x"]});
    assert!(!m(r#"{ $.arrayKey[0] = "n" }"#, &r));
    assert!(!m("{ $.list[1].id = 1 }", &r), "item is not an object");
    assert!(!m("{ $.list[5].id = 1 }", &r), "out of range");
    assert!(m("{ $.list[0].id = 1 }", &r));
    assert!(
        !m("{ $.list.id = 1 }", &r),
        "no implicit search through arrays"
    );
}

#[test]
fn choice_absent_field_fails_every_comparison() {
    let r = json!({"present": "x"});
    for pattern in [
        "{ $.absent = x }",
        "{ $.absent != x }",
        "{ $.absent = * }",
        "{ $.absent = 1 }",
        "{ $.absent != 1 }",
        "{ $.absent = %x% }",
        "{ $.absent != %x% }",
        "{ $.present.child != y }",
    ] {
        assert!(!m(pattern, &r), "{pattern}");
    }
}

#[test]
fn choice_strings_see_numbers_through_their_text() {
    let r = json!({"code": 200, "latency": 12.5, "flag": true, "nothing": null});
    assert!(m(r#"{ $.code = "200" }"#, &r));
    assert!(m("{ $.code = 2* }", &r));
    assert!(
        m("{ $.latency = * }", &r),
        "the guide's `{{ $.latency = * }}`"
    );
    assert!(m(r#"{ $.latency = "12.5" }"#, &r));
    assert!(m(r#"{ $.code != "404" }"#, &r));
    assert!(m("{ $.code = %^2..$% }", &r));
    // Booleans and null are not value nodes.
    assert!(!m("{ $.flag = true }", &r));
    assert!(!m("{ $.flag != false }", &r));
    assert!(!m("{ $.flag = * }", &r));
    assert!(!m("{ $.nothing = * }", &r));
    assert!(!m("{ $.nothing != x }", &r));
}

#[test]
fn choice_numeric_literal_equals_numeric_strings() {
    let r =
        json!({"code": "200", "f": "200.0", "acct": "123456789012", "lead": "007", "word": "abc"});
    assert!(m("{ $.code = 200 }", &r));
    assert!(m("{ $.f = 200 }", &r));
    assert!(m("{ $.acct = 123456789012 }", &r));
    assert!(m("{ $.lead = 007 }", &r));
    assert!(m("{ $.lead = 7 }", &r));
    assert!(!m("{ $.code = 201 }", &r));
    assert!(m("{ $.code != 201 }", &r));
    assert!(!m("{ $.code != 200 }", &r));
    assert!(
        m("{ $.word != 500 }", &r),
        "a non-numeric string is not 500"
    );
    assert!(!m("{ $.word = 500 }", &r));
}

#[test]
fn regex_is_unanchored_unless_anchored() {
    let r = |s: &str| json!({ "a": s });
    assert!(m(
        "{ $.a = %AUTHORIZED% }",
        &r("[ERROR 401] UNAUTHORIZED REQUEST")
    ));
    assert!(m("{ $.a = %^Delete% }", &r("DeleteBucket")));
    assert!(!m("{ $.a = %^Delete% }", &r("BatchDelete")));
    assert!(m("{ $.a = %[hc]at$% }", &r("that")));
    assert!(!m("{ $.a = %[hc]at$% }", &r("hats")));
    assert!(m("{ $.a = %colou?r% }", &r("color")));
    assert!(m("{ $.a = %colou?r% }", &r("colour")));
    assert!(m("{ $.a = %gray|grey% }", &r("grey")));
    assert!(m("{ $.a = %^a{3,5}$% }", &r("aaaa")));
    assert!(!m("{ $.a = %^a{3,5}$% }", &r("aa")));
    assert!(m(r"{ $.a = %10\.10\.0\.1% }", &r("from 10.10.0.1")));
    assert!(!m(r"{ $.a = %10\.10\.0\.1% }", &r("10x10x0x1")));
    assert!(m("{ $.a != %^Delete% }", &r("Get")));
    assert!(!m("{ $.a != %^Delete% }", &r("DeleteX")));
    assert!(m("{ $.a = %Get% && $.b NOT EXISTS }", &r("GetObject")));
}

#[test]
fn compound_logic_short_circuits_correctly() {
    let r = json!({"a": 1, "b": 2});
    assert!(m("{ $.a = 1 && $.b = 2 }", &r));
    assert!(!m("{ $.a = 1 && $.b = 3 }", &r));
    assert!(m("{ $.a = 9 || $.b = 2 }", &r));
    assert!(!m("{ $.a = 9 || $.b = 9 }", &r));
    assert!(m("{ $.a = 9 || $.a = 8 || $.a = 1 }", &r));
    assert!(m("{ ($.a = 9 || $.a = 1) && ($.b = 2) }", &r));
    assert!(!m("{ ($.a = 9 || $.a = 8) && $.b = 2 }", &r));
}

#[test]
fn non_object_records_are_handled() {
    for record in [
        json!(null),
        json!("text"),
        json!(5),
        json!([1, 2]),
        json!({}),
    ] {
        assert!(!m("{ $.a = * }", &record), "{record}");
        assert!(m("{ $.a NOT EXISTS }", &record), "{record}");
    }
}

#[test]
fn filter_pattern_is_clone_send_sync() {
    fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync + 'static>() {}
    assert_traits::<FilterPattern>();
    assert_traits::<FilterPatternError>();
    let a = p("{ $.a = %x% }");
    let b = a.clone();
    assert!(b.matches(&json!({"a": "x"})));
    assert!(!format!("{a:?}").is_empty());
}

// ---------------------------------------------------------------- required_event_names

fn names(pattern: &str) -> Option<Vec<String>> {
    p(pattern).required_event_names()
}

fn owned(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn required_event_names_cases() {
    assert_eq!(
        names("{ $.eventName = ConsoleLogin }"),
        owned(&["ConsoleLogin"])
    );
    assert_eq!(
        names(r#"{ $.eventName = "B" || $.eventName = "A" || $.eventName = "B" }"#),
        owned(&["A", "B"]),
        "sorted, unique"
    );
    assert_eq!(
        names("{ $.eventSource = x && ($.eventName = A || $.eventName = B) }"),
        owned(&["A", "B"])
    );
    assert_eq!(
        names("{ ($.eventName = A || $.eventName = B) && ($.eventName = B || $.eventName = C) }"),
        owned(&["B"]),
        "&& intersects"
    );
    assert_eq!(names("{ $.eventName = A && $.eventName = B }"), owned(&[]));
    assert_eq!(
        names("{ $.eventName = A || $.other = B }"),
        None,
        "|| with an unconstrained branch"
    );
    assert_eq!(names("{ $.eventName = Delete* }"), None, "wildcard");
    assert_eq!(names("{ $.eventName != A }"), None);
    assert_eq!(names("{ $.eventName = %^A% }"), None);
    assert_eq!(names("{ $.eventName = 5 }"), None, "untyped number");
    assert_eq!(
        names("{ $.detail.eventName = A }"),
        None,
        "not the top-level field"
    );
    assert_eq!(names("{ $.eventName NOT EXISTS }"), None);
    assert_eq!(names("{ $.eventSource = x }"), None);
}

// ---------------------------------------------------------------- CIS AWS Foundations (Security Hub CloudWatch.1-14)

const CIS: [&str; 14] = [
    r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
    r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#,
    r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    "{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}",
    "{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}",
    r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#,
    "{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}",
    "{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}",
    "{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}",
    "{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}",
    "{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}",
    "{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}",
    "{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}",
    "{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || ($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || ($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) || ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || ($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || ($.eventName=EnableVpcClassicLink)}",
];

/// A CloudTrail record shaped like a real one, with the given overrides merged in at top level.
fn trail(overrides: Value) -> Value {
    let mut record = json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012",
            "userName": "alice"
        },
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "ListUsers",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": null,
        "responseElements": null,
        "requestID": "3b1f5f2e-0000-4000-8000-000000000000",
        "eventID": "9c1f5f2e-0000-4000-8000-000000000000",
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management"
    });
    if let (Some(base), Value::Object(extra)) = (record.as_object_mut(), overrides) {
        base.extend(extra);
    }
    record
}

#[test]
fn cis_patterns_all_parse() {
    for (i, pattern) in CIS.iter().enumerate() {
        if let Err(e) = FilterPattern::parse(pattern) {
            panic!("CloudWatch.{}: {e}", i + 1);
        }
    }
}

#[test]
fn cis_prefilter_names() {
    let expected: [Option<usize>; 14] = [
        None,
        None,
        Some(1),
        Some(16),
        Some(5),
        Some(1),
        Some(2),
        Some(9),
        Some(4),
        Some(6),
        Some(6),
        Some(6),
        Some(7),
        Some(11),
    ];
    for (i, (pattern, count)) in CIS.iter().zip(expected).enumerate() {
        assert_eq!(
            p(pattern).required_event_names().map(|n| n.len()),
            count,
            "CloudWatch.{}",
            i + 1
        );
    }
    assert_eq!(
        p(CIS[6]).required_event_names(),
        owned(&["DisableKey", "ScheduleKeyDeletion"])
    );
}

#[test]
fn cis_1_root_usage() {
    let root = json!({
        "type": "Root",
        "principalId": "123456789012",
        "arn": "arn:aws:iam::123456789012:root",
        "accountId": "123456789012"
    });
    let console_login = trail(json!({
        "userIdentity": root,
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "eventType": "AwsConsoleSignIn",
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"MFAUsed": "Yes"}
    }));
    assert!(p(CIS[0]).matches(&console_login));

    let mut invoked_by_service = console_login.clone();
    invoked_by_service["userIdentity"]["invokedBy"] = json!("support.amazonaws.com");
    assert!(!p(CIS[0]).matches(&invoked_by_service));

    let service_event = trail(json!({"userIdentity": root, "eventType": "AwsServiceEvent"}));
    assert!(!p(CIS[0]).matches(&service_event));

    assert!(
        !p(CIS[0]).matches(&trail(json!({}))),
        "an IAM user is not root"
    );
}

#[test]
fn cis_2_unauthorized_api_calls() {
    let pattern = p(CIS[1]);
    assert!(pattern.matches(&trail(json!({
        "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
        "errorCode": "Client.UnauthorizedOperation",
        "errorMessage": "You are not authorized to perform this operation."
    }))));
    assert!(pattern.matches(&trail(json!({"errorCode": "AccessDenied"}))));
    assert!(pattern.matches(&trail(json!({"errorCode": "AccessDeniedException"}))));
    assert!(!pattern.matches(&trail(json!({"errorCode": "ThrottlingException"}))));
    assert!(!pattern.matches(&trail(json!({}))), "no errorCode");
}

#[test]
fn cis_3_console_sign_in_without_mfa() {
    let pattern = p(CIS[2]);
    let login = |mfa: &str, result: &str| {
        trail(json!({
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "eventType": "AwsConsoleSignIn",
            "responseElements": {"ConsoleLogin": result},
            "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No", "MFAUsed": mfa}
        }))
    };
    assert!(pattern.matches(&login("No", "Success")));
    assert!(!pattern.matches(&login("Yes", "Success")));
    assert!(!pattern.matches(&login("No", "Failure")));
}

#[test]
fn cis_6_and_7_and_8() {
    let failed = trail(json!({
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "errorMessage": "Failed authentication",
        "responseElements": {"ConsoleLogin": "Failure"}
    }));
    assert!(p(CIS[5]).matches(&failed));
    assert!(!p(CIS[5]).matches(&trail(json!({"eventName": "ConsoleLogin"}))));

    let kms = |name: &str| trail(json!({"eventSource": "kms.amazonaws.com", "eventName": name}));
    assert!(p(CIS[6]).matches(&kms("DisableKey")));
    assert!(p(CIS[6]).matches(&kms("ScheduleKeyDeletion")));
    assert!(!p(CIS[6]).matches(&kms("Decrypt")));
    assert!(
        !p(CIS[6]).matches(&trail(json!({"eventName": "DisableKey"}))),
        "wrong source"
    );

    let s3 = trail(json!({
        "eventSource": "s3.amazonaws.com", "eventName": "PutBucketPolicy",
        "requestParameters": {"bucketName": "b", "policy": "{}"}
    }));
    assert!(p(CIS[7]).matches(&s3));
    assert!(!p(CIS[7]).matches(&trail(
        json!({"eventSource": "s3.amazonaws.com", "eventName": "GetObject"})
    )));
}

#[test]
fn cis_name_lists_match_their_names_only() {
    let pattern = p(CIS[9]);
    assert!(pattern.matches(&trail(
        json!({"eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress"})
    )));
    assert!(!pattern.matches(&trail(
        json!({"eventSource": "ec2.amazonaws.com", "eventName": "DescribeSecurityGroups"})
    )));
    for (i, pattern) in CIS.iter().enumerate().skip(3) {
        let pattern = p(pattern);
        for name in pattern.required_event_names().unwrap_or_default() {
            let source = match i {
                6 => "kms.amazonaws.com",
                7 => "s3.amazonaws.com",
                8 => "config.amazonaws.com",
                _ => "ec2.amazonaws.com",
            };
            let record = trail(json!({"eventSource": source, "eventName": name,
                                      "errorMessage": "Failed authentication"}));
            assert!(pattern.matches(&record), "CloudWatch.{} {name}", i + 1);
        }
    }
}

// ---------------------------------------------------------------- robustness

/// Deterministic pseudo-random sweep: parsing and matching never panic.
#[test]
fn never_panics_on_garbage() {
    const FRAGMENTS: [&str; 40] = [
        "{",
        "}",
        "(",
        ")",
        "$",
        ".",
        "a",
        "eventName",
        "[",
        "]",
        "0",
        "99999999999999999999999",
        "*",
        "=",
        "!=",
        "!",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "&",
        "|",
        "\"",
        "\\",
        "%",
        "%^a%",
        "IS",
        "NULL",
        "TRUE",
        "NOT",
        "EXISTS",
        " ",
        "\t",
        "é",
        "𝄞",
        "-1.5e3",
        "+",
        "e",
    ];
    let records = [
        json!({"a": [1, {"eventName": "x"}], "eventName": "ConsoleLogin", "n": null}),
        json!({"a": "1", "eventName": 5}),
        json!([]),
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for round in 0..40_000 {
        let mut text = String::new();
        if round % 2 == 0 {
            // Random fragments.
            if next() % 2 == 0 {
                text.push('{');
            }
            for _ in 0..next() % 24 {
                if next() % 8 == 0 {
                    text.push(char::from_u32((next() % 0x3000) as u32).unwrap_or('?'));
                } else {
                    text.push_str(FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize]);
                }
            }
        } else {
            // A valid pattern with a few characters deleted, replaced or inserted.
            let mut chars: Vec<char> = CIS[(next() % CIS.len() as u64) as usize].chars().collect();
            for _ in 0..1 + next() % 3 {
                let at = (next() % (chars.len() as u64 + 1)) as usize;
                let fragment = FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize];
                match next() % 3 {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 if at < chars.len() => {
                        chars.splice(at..=at, fragment.chars());
                    }
                    _ => {
                        chars.splice(at..at, fragment.chars());
                    }
                }
            }
            text = chars.into_iter().collect();
        }
        match FilterPattern::parse(&text) {
            Ok(pattern) => {
                parsed += 1;
                for record in &records {
                    let _ = pattern.matches(record);
                }
                let _ = pattern.required_event_names();
            }
            Err(e) => {
                assert!(
                    e.column >= 1 && e.column <= text.chars().count() + 1,
                    "{text:?}: {e}"
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(parsed > 0, "the sweep should reach some valid patterns");
}

#[test]
fn deep_json_and_long_chains_are_fine() {
    let pattern = format!(
        "{{ {} }}",
        (0..5_000)
            .map(|i| format!("$.k{i} = v"))
            .collect::<Vec<_>>()
            .join(" || ")
    );
    assert!(p(&pattern).matches(&json!({"k4999": "v"})));
    let selector = format!("$.{}", vec!["a"; 2_000].join("."));
    assert!(p(&format!("{{ {selector} NOT EXISTS }}")).matches(&json!({"a": {"a": 1}})));
}
