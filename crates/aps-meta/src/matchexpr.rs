//! Update `match` rules: parsing and evaluating the `XPath` 1.0 subset of D3 (REFERENCE §7.4, §7.5).
//!
//! Main decision: a rule is parsed once into a [`MatchExpr`] that accepts exactly the grammar of
//! §7.4 (`or`, `and`, `=` `!=` `<` `<=` `>` `>=`, `not(…)`, parentheses, child-step location
//! paths with an optional final `@attr` step, string and number literals). Anything else that is
//! valid `XPath` 1.0 (other functions, axes, predicates, `//`, `*`, `.`, prefixed names, variables,
//! arithmetic, unions) is refused with [`MatchError::Unsupported`], so import can lint the rule
//! and disable it (§11 Q14) instead of guessing.
//!
//! Evaluation follows `XPath` 1.0 types (node-sets compared existentially, strings, numbers,
//! booleans) with two readings from §7.4 / §11 Q8: node string values are trimmed of XML
//! whitespace before use, and a relational operator whose operands are both strings or node-sets
//! compares them as D2 versions ([`Version`]) instead of converting them to numbers. Unprefixed
//! names match elements in the APS core namespace, or in its misspelling `apsstandard.com`.
//!
//! Equality and printing: `MatchExpr` equality is structural; [`fmt::Display`] prints a canonical text
//! (single-spaced operators, only the parentheses the precedence needs) that parses back to an
//! equal value. Number literals keep their text (`1.0` and `1` are different literals).
//!
//! Known gaps: nesting of parentheses and `not()` is limited to [`MAX_DEPTH`] levels; names
//! follow `NCName` loosely (a letter or `_`, then letters, digits, `_`, `-`, `.`); elements in no
//! namespace never match.

use std::cmp::Ordering;
use std::fmt;

use roxmltree::{Document, Node, ParsingOptions};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ns;
use crate::version::Version;

/// Deepest nesting of parentheses and `not(…)` that [`MatchExpr::parse`] accepts.
pub const MAX_DEPTH: usize = 64;

/// A parsed update `match` rule (REFERENCE §7.4).
///
/// Built by [`MatchExpr::parse`] or [`MatchExpr::from_upgradable_from`]; serialised as its
/// canonical text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchExpr {
    root: Expr,
}

/// Why a rule could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The text is not an expression of the grammar (nor valid `XPath` 1.0).
    #[error("match expression has {found} at byte {position} where {expected} was expected")]
    Syntax {
        /// Byte offset of the offending token in the rule text.
        position: usize,
        /// What was found there, e.g. "`)`" or "the end of the expression".
        found: String,
        /// What the grammar allows at that point.
        expected: &'static str,
    },
    /// The text uses `XPath` 1.0 outside the supported subset.
    #[error(
        "match expression uses {construct} at byte {position}, which is outside the supported XPath subset"
    )]
    Unsupported {
        /// Byte offset of the construct in the rule text.
        position: usize,
        /// The construct, e.g. "function `contains()`" or "predicate `[`".
        construct: String,
    },
    /// Parentheses or `not(…)` nest deeper than [`MAX_DEPTH`].
    #[error("match expression nests parentheses deeper than {max} levels at byte {position}")]
    TooDeep {
        /// Byte offset of the parenthesis that is one level too deep.
        position: usize,
        /// The limit, [`MAX_DEPTH`].
        max: usize,
    },
    /// The APP-META.xml text given to [`MatchExpr::evaluate`] is not acceptable XML.
    #[error("APP-META.xml given to a match expression is not well-formed XML without a DTD")]
    Document(#[source] roxmltree::Error),
}

/// The category of a [`MatchError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchErrorKind {
    /// [`MatchError::Syntax`].
    Syntax,
    /// [`MatchError::Unsupported`].
    Unsupported,
    /// [`MatchError::TooDeep`].
    TooDeep,
    /// [`MatchError::Document`].
    Document,
}

impl MatchError {
    /// The category of this error.
    pub fn kind(&self) -> MatchErrorKind {
        match self {
            Self::Syntax { .. } => MatchErrorKind::Syntax,
            Self::Unsupported { .. } => MatchErrorKind::Unsupported,
            Self::TooDeep { .. } => MatchErrorKind::TooDeep,
            Self::Document(_) => MatchErrorKind::Document,
        }
    }

    /// Byte offset in the rule text, for errors about the rule itself.
    pub fn position(&self) -> Option<usize> {
        match self {
            Self::Syntax { position, .. }
            | Self::Unsupported { position, .. }
            | Self::TooDeep { position, .. } => Some(*position),
            Self::Document(_) => None,
        }
    }
}

impl MatchExpr {
    /// Parses a rule; errors name the byte position and what was unexpected there.
    pub fn parse(text: &str) -> Result<Self, MatchError> {
        let mut parser = Parser::new(text);
        let root = parser.parse_or(0)?;
        let token = parser.next()?;
        if token.kind == Tok::End {
            Ok(Self { root })
        } else {
            Err(unexpected(
                &token,
                "an operator or the end of the expression",
                Slot::Operator,
            ))
        }
    }

    /// Evaluates the rule against an APP-META.xml document, with the document root as context.
    ///
    /// This is the context of `patch/@match` and `upgrade/@match`, evaluated against the
    /// **installed** package's metadata (§7.2). The XML may not contain a DTD.
    pub fn evaluate(&self, app_meta_xml: &str) -> Result<bool, MatchError> {
        let options = ParsingOptions {
            allow_dtd: false,
            ..ParsingOptions::default()
        };
        let document =
            Document::parse_with_options(app_meta_xml, options).map_err(MatchError::Document)?;
        Ok(self.evaluate_at(document.root()))
    }

    /// Evaluates the rule with `node` as the context node.
    ///
    /// Relative paths start at `node`, absolute ones at its document's root. For
    /// `master-package/package/@match` pass the master instance's `application` element, so that
    /// `version` means its `application/version`.
    pub fn evaluate_at(&self, node: Node<'_, '_>) -> bool {
        eval(&self.root, node).truthy()
    }

    /// Builds the upgrade rule equivalent to APS 1.0 `upgradable-from` elements (§7.5).
    ///
    /// Each `(version, release)` item becomes `/application/version = 'V' and
    /// /application/release = 'R'` (without the release clause when `release` is `None`), and
    /// the items are joined with `or`. Values are trimmed of XML whitespace, as element text is
    /// when compared. A literal is quoted with `'`, or with `"` when it contains `'`; an `XPath` 1.0
    /// literal cannot hold both quote characters, so an item whose version or release contains
    /// both becomes the clause `1 = 0`, which never matches. Returns `None` for no items.
    pub fn from_upgradable_from(items: &[(String, Option<String>)]) -> Option<Self> {
        let mut clauses: Vec<Expr> = items
            .iter()
            .map(|(version, release)| upgradable_from_clause(version, release.as_deref()))
            .collect();
        let root = match clauses.len() {
            0 => return None,
            1 => clauses.pop()?,
            _ => Expr::Or(clauses),
        };
        Some(Self { root })
    }
}

impl fmt::Display for MatchExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expr(f, &self.root, 0)
    }
}

impl std::str::FromStr for MatchExpr {
    type Err = MatchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for MatchExpr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MatchExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

/// An expression of the subset. Chains of one operator level are kept flat so that long rules
/// do not make the tree deep; only parentheses and `not()` nest, and they are bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expr {
    /// Two or more operands joined by `or`.
    Or(Vec<Expr>),
    /// Two or more operands joined by `and`.
    And(Vec<Expr>),
    /// `first (= | !=) operand …`, evaluated left to right.
    Equality(Box<Expr>, Vec<(CmpOp, Expr)>),
    /// `first (< | <= | > | >=) operand …`, evaluated left to right.
    Relational(Box<Expr>, Vec<(CmpOp, Expr)>),
    /// `not(expr)`.
    Not(Box<Expr>),
    /// A location path.
    Path(Path),
    /// A string literal (never holds both `'` and `"`).
    Literal(String),
    /// A number literal.
    Number(NumberLit),
}

/// Precedence levels, loosest first; operands of a chain are printed at a strictly higher level.
const LEVEL_OR: u8 = 1;
const LEVEL_AND: u8 = 2;
const LEVEL_EQUALITY: u8 = 3;
const LEVEL_RELATIONAL: u8 = 4;
const LEVEL_PRIMARY: u8 = 5;

impl Expr {
    fn level(&self) -> u8 {
        match self {
            Self::Or(_) => LEVEL_OR,
            Self::And(_) => LEVEL_AND,
            Self::Equality(..) => LEVEL_EQUALITY,
            Self::Relational(..) => LEVEL_RELATIONAL,
            Self::Not(_) | Self::Path(_) | Self::Literal(_) | Self::Number(_) => LEVEL_PRIMARY,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    /// Whether `a op b` holds given how `a` compares with `b`.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Self::Eq => ordering.is_eq(),
            Self::Ne => ordering.is_ne(),
            Self::Lt => ordering.is_lt(),
            Self::Le => ordering.is_le(),
            Self::Gt => ordering.is_gt(),
            Self::Ge => ordering.is_ge(),
        }
    }
}

/// A location path: child steps of unprefixed names and an optional final attribute step.
/// At least one of `steps` and `attribute` is present.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Path {
    absolute: bool,
    steps: Vec<String>,
    attribute: Option<String>,
}

/// A number literal, kept as written so that printing gives back the same text.
#[derive(Clone, Debug)]
struct NumberLit {
    text: String,
    value: f64,
}

impl NumberLit {
    /// `text` matches the Number grammar, so it always parses (possibly to infinity).
    fn new(text: String) -> Self {
        let value = text.parse().unwrap_or(f64::NAN);
        Self { text, value }
    }
}

impl PartialEq for NumberLit {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for NumberLit {}

/// The clause of one `upgradable-from` item (see [`MatchExpr::from_upgradable_from`]).
fn upgradable_from_clause(version: &str, release: Option<&str>) -> Expr {
    let version = trim_xml(version);
    let release = release.map(trim_xml);
    let representable = |text: &str| !(text.contains('\'') && text.contains('"'));
    if !representable(version) || release.is_some_and(|r| !representable(r)) {
        return Expr::Equality(
            Box::new(Expr::Number(NumberLit::new("1".to_owned()))),
            vec![(CmpOp::Eq, Expr::Number(NumberLit::new("0".to_owned())))],
        );
    }
    let field_equals = |field: &str, value: &str| {
        Expr::Equality(
            Box::new(Expr::Path(Path {
                absolute: true,
                steps: vec!["application".to_owned(), field.to_owned()],
                attribute: None,
            })),
            vec![(CmpOp::Eq, Expr::Literal(value.to_owned()))],
        )
    };
    let version_clause = field_equals("version", version);
    match release {
        Some(release) => Expr::And(vec![version_clause, field_equals("release", release)]),
        None => version_clause,
    }
}

// ---------------------------------------------------------------------------------------------
// Printing

fn write_expr(f: &mut fmt::Formatter<'_>, expr: &Expr, min_level: u8) -> fmt::Result {
    let parenthesised = expr.level() < min_level;
    if parenthesised {
        f.write_str("(")?;
    }
    match expr {
        Expr::Or(items) => write_joined(f, items, " or ", LEVEL_OR + 1)?,
        Expr::And(items) => write_joined(f, items, " and ", LEVEL_AND + 1)?,
        Expr::Equality(first, rest) => write_chain(f, first, rest, LEVEL_EQUALITY + 1)?,
        Expr::Relational(first, rest) => write_chain(f, first, rest, LEVEL_RELATIONAL + 1)?,
        Expr::Not(inner) => {
            f.write_str("not(")?;
            write_expr(f, inner, 0)?;
            f.write_str(")")?;
        }
        Expr::Path(path) => write_path(f, path)?,
        Expr::Literal(text) => {
            let quote = if text.contains('\'') { '"' } else { '\'' };
            write!(f, "{quote}{text}{quote}")?;
        }
        Expr::Number(number) => f.write_str(&number.text)?,
    }
    if parenthesised {
        f.write_str(")")?;
    }
    Ok(())
}

fn write_joined(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str, level: u8) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_expr(f, item, level)?;
    }
    Ok(())
}

fn write_chain(
    f: &mut fmt::Formatter<'_>,
    first: &Expr,
    rest: &[(CmpOp, Expr)],
    level: u8,
) -> fmt::Result {
    write_expr(f, first, level)?;
    for (op, operand) in rest {
        write!(f, " {} ", op.symbol())?;
        write_expr(f, operand, level)?;
    }
    Ok(())
}

fn write_path(f: &mut fmt::Formatter<'_>, path: &Path) -> fmt::Result {
    if path.absolute {
        f.write_str("/")?;
    }
    f.write_str(&path.steps.join("/"))?;
    if let Some(attribute) = &path.attribute {
        if !path.steps.is_empty() {
            f.write_str("/")?;
        }
        write!(f, "@{attribute}")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Lexing and parsing

/// A token of `XPath` 1.0 expression syntax (more than the subset, so that unsupported
/// constructs are recognised as such).
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Slash,
    DoubleSlash,
    At,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Cmp(CmpOp),
    Pipe,
    Plus,
    Minus,
    Star,
    Comma,
    Dot,
    DotDot,
    Dollar,
    ColonColon,
    Literal(String),
    Number(String),
    /// An unprefixed name (`NCName`).
    Name(String),
    /// A prefixed name `prefix:local` or `prefix:*`.
    PrefixedName(String),
    End,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Tok,
    start: usize,
}

/// Where a token was found: where an operand or where an operator may start.
#[derive(Clone, Copy)]
enum Slot {
    Operand,
    Operator,
}

fn describe(kind: &Tok) -> String {
    match kind {
        Tok::End => "the end of the expression".to_owned(),
        Tok::Literal(_) => "a string literal".to_owned(),
        Tok::Number(text) => format!("number `{text}`"),
        Tok::Name(name) | Tok::PrefixedName(name) => format!("name `{name}`"),
        Tok::Cmp(op) => format!("`{}`", op.symbol()),
        other => format!("`{}`", symbol(other)),
    }
}

fn symbol(kind: &Tok) -> &'static str {
    match kind {
        Tok::Slash => "/",
        Tok::DoubleSlash => "//",
        Tok::At => "@",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Pipe => "|",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Comma => ",",
        Tok::Dot => ".",
        Tok::DotDot => "..",
        Tok::Dollar => "$",
        Tok::ColonColon => "::",
        Tok::Cmp(_)
        | Tok::Literal(_)
        | Tok::Number(_)
        | Tok::Name(_)
        | Tok::PrefixedName(_)
        | Tok::End => "",
    }
}

/// The error for `token` where `expected` was wanted: `Unsupported` when the token starts an
/// `XPath` 1.0 construct outside the subset at that place, otherwise `Syntax`.
fn unexpected(token: &Token, expected: &'static str, slot: Slot) -> MatchError {
    let construct = match (slot, &token.kind) {
        (_, Tok::DoubleSlash) => Some("the `//` abbreviation".to_owned()),
        (_, Tok::PrefixedName(name)) => Some(format!("prefixed name `{name}`")),
        (Slot::Operand, Tok::Star) => Some("wildcard `*`".to_owned()),
        (Slot::Operand, Tok::Dot | Tok::DotDot) => {
            Some(format!("abbreviated step `{}`", symbol(&token.kind)))
        }
        (Slot::Operand, Tok::Dollar) => Some("variable reference `$`".to_owned()),
        (Slot::Operand, Tok::Minus) => Some("unary minus `-`".to_owned()),
        (Slot::Operator, Tok::Plus | Tok::Minus | Tok::Star) => {
            Some(format!("arithmetic operator `{}`", symbol(&token.kind)))
        }
        (Slot::Operator, Tok::Name(name)) if name == "div" || name == "mod" => {
            Some(format!("arithmetic operator `{name}`"))
        }
        (Slot::Operator, Tok::Pipe) => Some("union operator `|`".to_owned()),
        (Slot::Operator, Tok::LBracket) => Some("predicate `[`".to_owned()),
        (Slot::Operator, Tok::Slash) => {
            Some("a path step after an expression that is not a path".to_owned())
        }
        _ => None,
    };
    match construct {
        Some(construct) => MatchError::Unsupported {
            position: token.start,
            construct,
        },
        None => MatchError::Syntax {
            position: token.start,
            found: describe(&token.kind),
            expected,
        },
    }
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\u{b7}')
}

/// A recursive-descent parser with one token of look-ahead, lexing on demand so that the first
/// problem from the left is the one reported.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
    peeked: Option<Token>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            peeked: None,
        }
    }

    fn next(&mut self) -> Result<Token, MatchError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lex(),
        }
    }

    fn peek(&mut self) -> Result<&Tok, MatchError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex()?);
        }
        Ok(self.peeked.as_ref().map_or(&Tok::End, |token| &token.kind))
    }

    /// Characters from the current position.
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn lex(&mut self) -> Result<Token, MatchError> {
        let skipped = self.rest().len() - trim_xml_start(self.rest()).len();
        self.pos += skipped;
        let start = self.pos;
        let rest = self.rest();
        let mut chars = rest.chars();
        let Some(c) = chars.next() else {
            return Ok(Token {
                kind: Tok::End,
                start,
            });
        };
        let second = chars.next();
        let (kind, len) = match (c, second) {
            ('/', Some('/')) => (Tok::DoubleSlash, 2),
            ('/', _) => (Tok::Slash, 1),
            ('@', _) => (Tok::At, 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            ('|', _) => (Tok::Pipe, 1),
            ('+', _) => (Tok::Plus, 1),
            ('-', _) => (Tok::Minus, 1),
            ('*', _) => (Tok::Star, 1),
            (',', _) => (Tok::Comma, 1),
            ('$', _) => (Tok::Dollar, 1),
            (':', Some(':')) => (Tok::ColonColon, 2),
            ('=', _) => (Tok::Cmp(CmpOp::Eq), 1),
            ('!', Some('=')) => (Tok::Cmp(CmpOp::Ne), 2),
            ('<', Some('=')) => (Tok::Cmp(CmpOp::Le), 2),
            ('<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            ('>', Some('=')) => (Tok::Cmp(CmpOp::Ge), 2),
            ('>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            ('.', Some('.')) => (Tok::DotDot, 2),
            ('.', Some(d)) if d.is_ascii_digit() => self.lex_number(),
            ('.', _) => (Tok::Dot, 1),
            ('\'' | '"', _) => match rest[1..].find(c) {
                Some(end) => (Tok::Literal(rest[1..=end].to_owned()), end + 2),
                None => {
                    return Err(MatchError::Syntax {
                        position: start,
                        found: "an unterminated string literal".to_owned(),
                        expected: "a closing quote",
                    });
                }
            },
            (d, _) if d.is_ascii_digit() => self.lex_number(),
            (n, _) if is_name_start(n) => self.lex_name(),
            (other, _) => {
                return Err(MatchError::Syntax {
                    position: start,
                    found: format!("character `{other}`"),
                    expected: "a token of the expression",
                });
            }
        };
        self.pos += len;
        Ok(Token { kind, start })
    }

    /// Lexes `Digits ("." Digits?)? | "." Digits` at the current position.
    fn lex_number(&self) -> (Tok, usize) {
        let rest = self.rest();
        let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let mut len = digits(rest);
        if rest[len..].starts_with('.') {
            len += 1;
            len += digits(&rest[len..]);
        }
        (Tok::Number(rest[..len].to_owned()), len)
    }

    /// Lexes an `NCName`, or a prefixed name when a `:` and a name or `*` follow directly.
    fn lex_name(&self) -> (Tok, usize) {
        let rest = self.rest();
        let name_len = |s: &str| {
            s.char_indices()
                .find(|&(i, c)| {
                    if i == 0 {
                        !is_name_start(c)
                    } else {
                        !is_name_char(c)
                    }
                })
                .map_or(s.len(), |(i, _)| i)
        };
        let len = name_len(rest);
        if let Some(after) = rest[len..].strip_prefix(':') {
            let local = if after.starts_with('*') {
                1
            } else {
                name_len(after)
            };
            if local > 0 {
                let total = len + 1 + local;
                return (Tok::PrefixedName(rest[..total].to_owned()), total);
            }
        }
        (Tok::Name(rest[..len].to_owned()), len)
    }

    fn parse_or(&mut self, depth: usize) -> Result<Expr, MatchError> {
        let first = self.parse_and(depth)?;
        let mut items = vec![first];
        while matches!(self.peek()?, Tok::Name(name) if name == "or") {
            self.next()?;
            items.push(self.parse_and(depth)?);
        }
        Ok(chain_or_single(items, Expr::Or))
    }

    fn parse_and(&mut self, depth: usize) -> Result<Expr, MatchError> {
        let first = self.parse_equality(depth)?;
        let mut items = vec![first];
        while matches!(self.peek()?, Tok::Name(name) if name == "and") {
            self.next()?;
            items.push(self.parse_equality(depth)?);
        }
        Ok(chain_or_single(items, Expr::And))
    }

    fn parse_equality(&mut self, depth: usize) -> Result<Expr, MatchError> {
        let first = self.parse_relational(depth)?;
        let mut rest = Vec::new();
        while let Tok::Cmp(op @ (CmpOp::Eq | CmpOp::Ne)) = *self.peek()? {
            self.next()?;
            rest.push((op, self.parse_relational(depth)?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Equality(Box::new(first), rest)
        })
    }

    fn parse_relational(&mut self, depth: usize) -> Result<Expr, MatchError> {
        let first = self.parse_primary(depth)?;
        let mut rest = Vec::new();
        while let Tok::Cmp(op @ (CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge)) = *self.peek()? {
            self.next()?;
            rest.push((op, self.parse_primary(depth)?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Relational(Box::new(first), rest)
        })
    }

    fn parse_primary(&mut self, depth: usize) -> Result<Expr, MatchError> {
        let token = self.next()?;
        match token.kind {
            Tok::Literal(text) => Ok(Expr::Literal(text)),
            Tok::Number(text) => Ok(Expr::Number(NumberLit::new(text))),
            Tok::LParen => self.parse_nested(depth, token.start),
            Tok::Slash => {
                if !matches!(
                    self.peek()?,
                    Tok::Name(_)
                        | Tok::At
                        | Tok::Star
                        | Tok::Dot
                        | Tok::DotDot
                        | Tok::PrefixedName(_)
                ) {
                    return Err(MatchError::Unsupported {
                        position: token.start,
                        construct: "the root path `/` on its own".to_owned(),
                    });
                }
                let mut path = Path {
                    absolute: true,
                    steps: Vec::new(),
                    attribute: None,
                };
                let step = self.next()?;
                self.parse_step(step, &mut path)?;
                self.parse_path_rest(path)
            }
            Tok::Name(ref name) => match self.peek()? {
                Tok::LParen if name == "not" => {
                    let open = self.next()?;
                    Ok(Expr::Not(Box::new(self.parse_nested(depth, open.start)?)))
                }
                Tok::LParen => Err(MatchError::Unsupported {
                    position: token.start,
                    construct: format!("function `{name}()`"),
                }),
                _ => {
                    let mut path = Path {
                        absolute: false,
                        steps: Vec::new(),
                        attribute: None,
                    };
                    self.parse_step(token, &mut path)?;
                    self.parse_path_rest(path)
                }
            },
            Tok::At => {
                let mut path = Path {
                    absolute: false,
                    steps: Vec::new(),
                    attribute: None,
                };
                self.parse_step(token, &mut path)?;
                self.parse_path_rest(path)
            }
            _ => Err(unexpected(&token, "an operand", Slot::Operand)),
        }
    }

    /// Parses `Expr ")"` after an opening parenthesis at `open`.
    fn parse_nested(&mut self, depth: usize, open: usize) -> Result<Expr, MatchError> {
        if depth >= MAX_DEPTH {
            return Err(MatchError::TooDeep {
                position: open,
                max: MAX_DEPTH,
            });
        }
        let inner = self.parse_or(depth + 1)?;
        let close = self.next()?;
        if close.kind == Tok::RParen {
            Ok(inner)
        } else {
            Err(unexpected(&close, "an operator or `)`", Slot::Operator))
        }
    }

    /// Adds the step that starts with `token` (already consumed) to `path`.
    fn parse_step(&mut self, token: Token, path: &mut Path) -> Result<(), MatchError> {
        match token.kind {
            Tok::Name(name) => match self.peek()? {
                Tok::LParen => Err(MatchError::Unsupported {
                    position: token.start,
                    construct: format!("node test or function `{name}()`"),
                }),
                Tok::ColonColon => Err(MatchError::Unsupported {
                    position: token.start,
                    construct: format!("axis `{name}::`"),
                }),
                _ => {
                    path.steps.push(name);
                    Ok(())
                }
            },
            Tok::At => {
                let name = self.next()?;
                match name.kind {
                    Tok::Name(name) => {
                        path.attribute = Some(name);
                        Ok(())
                    }
                    _ => Err(unexpected(&name, "an attribute name", Slot::Operand)),
                }
            }
            _ => Err(unexpected(&token, "a step name", Slot::Operand)),
        }
    }

    /// Parses further `/step`s of a path and returns it.
    fn parse_path_rest(&mut self, mut path: Path) -> Result<Expr, MatchError> {
        loop {
            match self.peek()? {
                Tok::Slash => {
                    let slash = self.next()?;
                    if path.attribute.is_some() {
                        return Err(MatchError::Unsupported {
                            position: slash.start,
                            construct: "a step after an attribute step".to_owned(),
                        });
                    }
                    let step = self.next()?;
                    self.parse_step(step, &mut path)?;
                }
                Tok::ColonColon => {
                    let token = self.next()?;
                    return Err(MatchError::Unsupported {
                        position: token.start,
                        construct: "an axis `::`".to_owned(),
                    });
                }
                _ => return Ok(Expr::Path(path)),
            }
        }
    }
}

/// `items[0]` when alone, otherwise the chain built by `chain`.
fn chain_or_single(mut items: Vec<Expr>, chain: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    chain(items)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// An `XPath` 1.0 value; node-sets are kept as the trimmed string values of their nodes.
enum Value {
    Nodes(Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Self::Nodes(nodes) => !nodes.is_empty(),
            Self::Str(text) => !text.is_empty(),
            Self::Num(number) => *number != 0.0 && !number.is_nan(),
            Self::Bool(value) => *value,
        }
    }

    /// The value as an atom; node-sets are handled before this is called.
    fn atom(&self) -> Atom<'_> {
        match self {
            Self::Nodes(nodes) => Atom::Bool(!nodes.is_empty()),
            Self::Str(text) => Atom::Str(text),
            Self::Num(number) => Atom::Num(*number),
            Self::Bool(value) => Atom::Bool(*value),
        }
    }
}

/// A single value to compare.
#[derive(Clone, Copy)]
enum Atom<'a> {
    Str(&'a str),
    Num(f64),
    Bool(bool),
}

impl Atom<'_> {
    fn to_bool(self) -> bool {
        match self {
            Self::Str(text) => !text.is_empty(),
            Self::Num(number) => number != 0.0 && !number.is_nan(),
            Self::Bool(value) => value,
        }
    }

    fn to_number(self) -> f64 {
        match self {
            Self::Str(text) => xpath_number(text),
            Self::Num(number) => number,
            Self::Bool(value) => f64::from(u8::from(value)),
        }
    }
}

fn eval(expr: &Expr, context: Node<'_, '_>) -> Value {
    match expr {
        Expr::Or(items) => Value::Bool(items.iter().any(|item| eval(item, context).truthy())),
        Expr::And(items) => Value::Bool(items.iter().all(|item| eval(item, context).truthy())),
        Expr::Equality(first, rest) | Expr::Relational(first, rest) => {
            let mut left = eval(first, context);
            for (op, operand) in rest {
                let right = eval(operand, context);
                left = Value::Bool(compare(*op, &left, &right));
            }
            left
        }
        Expr::Not(inner) => Value::Bool(!eval(inner, context).truthy()),
        Expr::Path(path) => Value::Nodes(select(path, context)),
        Expr::Literal(text) => Value::Str(text.clone()),
        Expr::Number(number) => Value::Num(number.value),
    }
}

/// `XPath` 1.0 comparison (§3.4 of the `XPath` recommendation), node-sets existentially.
fn compare(op: CmpOp, left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Nodes(a), Value::Bool(b)) => {
            compare_atoms(op, Atom::Bool(!a.is_empty()), Atom::Bool(*b))
        }
        (Value::Bool(a), Value::Nodes(b)) => {
            compare_atoms(op, Atom::Bool(*a), Atom::Bool(!b.is_empty()))
        }
        (Value::Nodes(a), Value::Nodes(b)) => a.iter().any(|x| {
            b.iter()
                .any(|y| compare_atoms(op, Atom::Str(x), Atom::Str(y)))
        }),
        (Value::Nodes(a), other) => a
            .iter()
            .any(|x| compare_atoms(op, Atom::Str(x), other.atom())),
        (other, Value::Nodes(b)) => b
            .iter()
            .any(|y| compare_atoms(op, other.atom(), Atom::Str(y))),
        (a, b) => compare_atoms(op, a.atom(), b.atom()),
    }
}

fn compare_atoms(op: CmpOp, a: Atom<'_>, b: Atom<'_>) -> bool {
    match op {
        CmpOp::Eq | CmpOp::Ne => {
            let equal = match (a, b) {
                (Atom::Bool(_), _) | (_, Atom::Bool(_)) => a.to_bool() == b.to_bool(),
                (Atom::Num(_), _) | (_, Atom::Num(_)) => {
                    // IEEE equality, as XPath's `=` on numbers: NaN equals nothing, -0 = 0.
                    a.to_number()
                        .partial_cmp(&b.to_number())
                        .is_some_and(Ordering::is_eq)
                }
                (Atom::Str(x), Atom::Str(y)) => x == y,
            };
            (op == CmpOp::Eq) == equal
        }
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => match (a, b) {
            // Two strings: the D2 reading of §7.4 (§11 Q8).
            (Atom::Str(x), Atom::Str(y)) => op.holds(Version::new(x).cmp(&Version::new(y))),
            _ => a
                .to_number()
                .partial_cmp(&b.to_number())
                .is_some_and(|ordering| op.holds(ordering)),
        },
    }
}

/// `XPath` 1.0 `number()` of a string: optional `-`, then a Number, surrounded by whitespace;
/// anything else is NaN.
fn xpath_number(text: &str) -> f64 {
    let trimmed = trim_xml(text);
    let unsigned = trimmed.strip_prefix('-').unwrap_or(trimmed);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let valid = all_digits(int)
        && frac.is_none_or(all_digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    if valid {
        trimmed.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// The trimmed string values of the nodes `path` selects from `context`.
fn select(path: &Path, context: Node<'_, '_>) -> Vec<String> {
    let start = if path.absolute {
        context.document().root()
    } else {
        context
    };
    let mut nodes = vec![start];
    for step in &path.steps {
        nodes = nodes
            .iter()
            .flat_map(Node::children)
            .filter(|child| child.is_element() && is_core_name(*child, step))
            .collect();
    }
    match &path.attribute {
        Some(name) => nodes
            .iter()
            .filter_map(|node| {
                node.attributes()
                    .find(|attribute| attribute.namespace().is_none() && attribute.name() == name)
                    .map(|attribute| trim_xml(attribute.value()).to_owned())
            })
            .collect(),
        None => nodes
            .iter()
            .map(|node| trim_xml(&string_value(*node)).to_owned())
            .collect(),
    }
}

fn is_core_name(node: Node<'_, '_>, name: &str) -> bool {
    let tag = node.tag_name();
    tag.name() == name && matches!(tag.namespace(), Some(ns::CORE | ns::CORE_MISSPELLED))
}

/// `XPath` string value of an element or root: its descendant text, concatenated.
fn string_value(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(Node::is_text)
        .filter_map(|text| text.text())
        .collect()
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn trim_xml(text: &str) -> &str {
    text.trim_matches(is_xml_space)
}

fn trim_xml_start(text: &str) -> &str {
    text.trim_start_matches(is_xml_space)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A minimal installed APP-META.xml with the given version and release.
    fn app_meta(version: &str, release: &str) -> String {
        format!(
            r#"<application xmlns="http://apstandard.com/ns/1" version="1.2">
  <name>Test</name>
  <version>{version}</version>
  <release>{release}</release>
</application>"#
        )
    }

    fn matches(rule: &str, version: &str, release: &str) -> bool {
        MatchExpr::parse(rule)
            .unwrap()
            .evaluate(&app_meta(version, release))
            .unwrap()
    }

    const WORDPRESS: &str = "/application/version > '2.0' or /application/version = '2.0' and /application/release >= '1'";

    #[test]
    fn reference_examples() {
        assert!(matches(WORDPRESS, "5.2.3", "282"));
        assert!(matches(WORDPRESS, "2.0", "1"));
        assert!(!matches(WORDPRESS, "1.9", "5"));
        assert!(matches("/application/version >= '1.5.1'", "1.5.5.1.2", "1"));
        assert!(!matches("/application/version = '3.0'", "3.0.0", "1"));
        let either = "/application/version = '5.5.0' or /application/version = '5.5.1'";
        assert!(matches(either, "5.5.1", "1"));
        assert!(matches(
            "not(/application/version < '2.0')",
            "10.alpha1",
            "1"
        ));
    }

    #[test]
    fn master_package_rule_uses_the_application_element_as_context() {
        let rule = MatchExpr::parse("version = 1.1").unwrap();
        for (version, expected) in [("1.1", true), ("1.1.2", false), (" 1.10 ", true)] {
            let xml = app_meta(version, "1");
            let document = Document::parse(&xml).unwrap();
            assert_eq!(
                rule.evaluate_at(document.root_element()),
                expected,
                "{version}"
            );
            // From the document root, the relative path finds no `version` child.
            assert!(!rule.evaluate_at(document.root()));
        }
        // Absolute paths start at the root whatever the context node.
        let xml = app_meta("1.1", "1");
        let document = Document::parse(&xml).unwrap();
        let absolute = MatchExpr::parse("/application/version = '1.1'").unwrap();
        let name = document
            .descendants()
            .find(|n| n.has_tag_name((ns::CORE, "name")))
            .unwrap();
        assert!(absolute.evaluate_at(name));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // `a or b and c` is `a or (b and c)`: true for 5.2.3 although b is false.
        assert!(matches(WORDPRESS, "5.2.3", "0"));
        // With the other grouping it would need the release clause.
        let grouped = "(/application/version > '2.0' or /application/version = '2.0') and /application/release >= '1'";
        assert!(!matches(grouped, "5.2.3", "0"));
        assert_eq!(
            MatchExpr::parse(WORDPRESS).unwrap().to_string(),
            WORDPRESS,
            "canonical text of the WordPress rule is itself"
        );
    }

    #[test]
    fn string_equality_is_exact_and_numeric_with_a_number() {
        assert!(matches("/application/version = '3.0'", "3.0", "1"));
        assert!(!matches("/application/version = '3.0'", "3.0.0", "1"));
        assert!(matches("/application/version = 3", "3.0", "1"));
        assert!(matches("/application/version = 3.", "03", "1"));
        assert!(!matches("/application/version = 3", "3.0.0", "1"));
        assert!(matches("/application/version != '3.0'", "3.0.0", "1"));
        // No such element: existential comparisons are false both ways.
        assert!(!matches("/application/nothing = '1'", "1", "1"));
        assert!(!matches("/application/nothing != '1'", "1", "1"));
        assert!(matches("not(/application/nothing)", "1", "1"));
        assert!(matches("/application/release", "1", "1"));
    }

    #[test]
    fn relational_operators_numeric_or_d2() {
        // A number operand makes the comparison numeric; `5.2.3` is NaN.
        assert!(!matches("/application/version > 2", "5.2.3", "1"));
        assert!(matches("/application/version > 2", "5.2", "1"));
        assert!(matches("/application/release >= 282", "1", "282"));
        assert!(matches("/application/release >= .5", "1", "282"));
        // Two strings use D2.
        assert!(matches("/application/version > '2.9'", "2.10", "1"));
        assert!(matches("/application/version < '10'", "10.RC33", "1"));
        assert!(matches("'1.0' < '1.0a'", "x", "1"));
        assert!(matches(
            "/application/version >= /application/release",
            "2",
            "1.9"
        ));
        // Booleans in a relational comparison are numbers (true = 1).
        assert!(matches("(1 = 1) > 0", "1", "1"));
        assert!(matches("1 < 2 < 3", "1", "1"));
        assert!(!matches("3 > 2 > 1", "1", "1"));
    }

    #[test]
    fn element_text_is_trimmed() {
        assert!(matches(
            "/application/version = '5.2.3'",
            "\n  5.2.3\t ",
            "1"
        ));
        assert!(matches("/application/version >= '5.2.3'", " 5.2.3 ", "1"));
    }

    #[test]
    fn node_sets_compare_existentially() {
        let xml = r#"<application xmlns="http://apstandard.com/ns/1">
            <version>1.0</version><version>2.0</version><release>1</release></application>"#;
        let check = |rule: &str| MatchExpr::parse(rule).unwrap().evaluate(xml).unwrap();
        assert!(check("/application/version = '2.0'"));
        assert!(check("/application/version = '1.0'"));
        assert!(check("/application/version != '1.0'"));
        assert!(check("/application/version = /application/version"));
        assert!(check("/application/version > '1.5'"));
        assert!(!check("/application/version > '2.0'"));
    }

    #[test]
    fn namespaces() {
        let misspelled = r#"<application xmlns="http://apsstandard.com/ns/1"><version>2.0</version></application>"#;
        let rule = MatchExpr::parse("/application/version = '2.0'").unwrap();
        assert!(rule.evaluate(misspelled).unwrap());
        let none = "<application><version>2.0</version></application>";
        assert!(!rule.evaluate(none).unwrap());
        let other = r#"<application xmlns="http://apstandard.com/ns/1" xmlns:x="urn:x"><x:version>2.0</x:version></application>"#;
        assert!(!rule.evaluate(other).unwrap());
    }

    #[test]
    fn attribute_steps() {
        let xml = app_meta("1", "1");
        let check = |rule: &str| MatchExpr::parse(rule).unwrap().evaluate(&xml).unwrap();
        assert!(check("/application/@version = '1.2'"));
        assert!(check("/application/@version >= '1.1'"));
        assert!(!check("/application/@missing"));
        assert!(!check("/@version"));
        assert!(!check("@version"));
        assert!(check("application/@version = 1.2"));
    }

    #[test]
    fn documents_that_are_not_acceptable() {
        let rule = MatchExpr::parse("/application/version").unwrap();
        let err = rule.evaluate("<application>").unwrap_err();
        assert_eq!(err.kind(), MatchErrorKind::Document);
        assert_eq!(err.position(), None);
        let dtd = r#"<!DOCTYPE application [<!ENTITY v "1.0">]><application xmlns="http://apstandard.com/ns/1"><version>&v;</version></application>"#;
        assert_eq!(
            rule.evaluate(dtd).unwrap_err().kind(),
            MatchErrorKind::Document
        );
    }

    #[test]
    fn syntax_errors_name_position_and_token() {
        let err = MatchExpr::parse("/application/version = ").unwrap_err();
        assert_eq!(
            err,
            MatchError::Syntax {
                position: 23,
                found: "the end of the expression".to_owned(),
                expected: "an operand",
            }
        );
        assert_eq!(
            err.to_string(),
            "match expression has the end of the expression at byte 23 where an operand was expected"
        );
        let err = MatchExpr::parse("version = '1.0").unwrap_err();
        assert_eq!(err.kind(), MatchErrorKind::Syntax);
        assert_eq!(err.position(), Some(10));
        for (rule, position) in [
            ("", 0),
            ("   ", 3),
            ("(version", 8),
            ("version)", 7),
            ("version = = 1", 10),
            ("not()", 4),
            ("not(version", 11),
            ("version 1", 8),
            ("a ! b", 2),
            ("a # b", 2),
            ("version = 1.2.3", 13),
            ("/application/", 13),
            ("/application/@", 14),
            ("a or", 4),
            ("f(1, 2", 0),
        ] {
            let err = MatchExpr::parse(rule).unwrap_err();
            if rule.starts_with("f(") {
                assert_eq!(err.kind(), MatchErrorKind::Unsupported, "{rule:?}");
            } else {
                assert_eq!(err.kind(), MatchErrorKind::Syntax, "{rule:?}: {err}");
            }
            assert_eq!(err.position(), Some(position), "{rule:?}: {err}");
        }
    }

    #[test]
    fn constructs_outside_the_subset_are_unsupported() {
        for rule in [
            "contains(/application/version, '2')",
            "string(/application/version) = '1'",
            "true()",
            "/application/version[1] = '1'",
            "//version = '1'",
            "/application//version",
            "/application/* = '1'",
            "/aps:application/version",
            "/application/@xml:lang",
            "child::application",
            "/application/child::version",
            "/application/version/text() = '1'",
            "./version",
            "../version",
            "$v = 1",
            "-1 < 0",
            "1 + 1 = 2",
            "3 - 1",
            "2 * 2",
            "4 div 2 = 2",
            "5 mod 2",
            "/application/version | /application/release",
            "/",
            "/ = 1",
            "'a'/b",
            "/application/@version/x",
            "*",
        ] {
            let err = MatchExpr::parse(rule).unwrap_err();
            assert_eq!(err.kind(), MatchErrorKind::Unsupported, "{rule:?}: {err}");
        }
        let err = MatchExpr::parse("/application/version[1]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "match expression uses predicate `[` at byte 20, which is outside the supported XPath subset"
        );
    }

    #[test]
    fn keywords_are_names_where_an_operand_is_expected() {
        let xml = r#"<application xmlns="http://apstandard.com/ns/1"><and>1</and><or>2</or><not>3</not><div>4</div></application>"#;
        for rule in [
            "application/and = 1",
            "/application/or = 2",
            "application/not = 3",
            "application/div = 4 and application/and < 2",
        ] {
            let parsed = MatchExpr::parse(rule).unwrap();
            assert!(parsed.evaluate(xml).unwrap(), "{rule}");
            assert_eq!(MatchExpr::parse(&parsed.to_string()).unwrap(), parsed);
        }
        assert_eq!(
            MatchExpr::parse("and").unwrap().to_string(),
            "and",
            "a lone keyword is a relative path"
        );
        let at_root = MatchExpr::parse("not = 3").unwrap();
        let document = Document::parse(xml).unwrap();
        assert!(at_root.evaluate_at(document.root_element()));
    }

    #[test]
    fn whitespace_between_tokens_is_allowed() {
        let spaced = MatchExpr::parse(" / application / version\t>=\n'1' ").unwrap();
        assert_eq!(spaced.to_string(), "/application/version >= '1'");
        let not_spaced = MatchExpr::parse("not (version)").unwrap();
        assert_eq!(not_spaced.to_string(), "not(version)");
    }

    #[test]
    fn nesting_is_limited_without_overflowing_the_stack() {
        let nested = |n: usize| format!("{}1 = 1{}", "(".repeat(n), ")".repeat(n));
        assert!(MatchExpr::parse(&nested(MAX_DEPTH)).is_ok());
        let err = MatchExpr::parse(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(
            err,
            MatchError::TooDeep {
                position: MAX_DEPTH,
                max: MAX_DEPTH
            }
        );
        let err = MatchExpr::parse(&nested(100_000)).unwrap_err();
        assert_eq!(err.kind(), MatchErrorKind::TooDeep);
        let nots = format!("{}1{}", "not(".repeat(100_000), ")".repeat(100_000));
        assert_eq!(
            MatchExpr::parse(&nots).unwrap_err().kind(),
            MatchErrorKind::TooDeep
        );
        let deep_not = format!("{}1{}", "not(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        // An even number of `not`s gives back the truth of `1`.
        assert!(matches(&deep_not, "1", "1"));
    }

    #[test]
    fn long_inputs() {
        let long = "x".repeat(1_000_000);
        let rule = MatchExpr::parse(&format!("/application/version = '{long}'")).unwrap();
        assert!(!rule.evaluate(&app_meta("1", "1")).unwrap());
        assert!(rule.evaluate(&app_meta(&long, "1")).unwrap());
        let chain = vec!["/application/version = '0'"; 50_000].join(" or ") + " or version";
        let rule = MatchExpr::parse(&chain).unwrap();
        assert!(!rule.evaluate(&app_meta("1", "1")).unwrap());
        assert_eq!(MatchExpr::parse(&rule.to_string()).unwrap(), rule);
        let unterminated = format!("'{long}");
        assert_eq!(
            MatchExpr::parse(&unterminated).unwrap_err().position(),
            Some(0)
        );
        let digits = "9".repeat(400);
        assert!(matches(&format!("{digits} > 1"), "1", "1"));
        let v40 = "1".repeat(40);
        assert!(matches(
            &format!("/application/version < '{v40}1'"),
            &v40,
            "1"
        ));
    }

    #[test]
    fn display_round_trips() {
        for (rule, canonical) in [
            (WORDPRESS, WORDPRESS),
            ("(a or b) or c", "(a or b) or c"),
            ("a or (b or c)", "a or (b or c)"),
            ("((a))", "a"),
            ("a and (b or c)", "a and (b or c)"),
            ("(a and b) or c", "a and b or c"),
            ("(a = b) = c", "(a = b) = c"),
            ("a = (b = c)", "a = (b = c)"),
            ("a = b != c", "a = b != c"),
            ("(a < b) = c", "a < b = c"),
            ("a < (b = c)", "a < (b = c)"),
            ("(a < b) < c", "(a < b) < c"),
            ("not((a))", "not(a)"),
            (r#""it's""#, r#""it's""#),
            (r#"'say "hi"'"#, r#"'say "hi"'"#),
            ("\"plain\"", "'plain'"),
            ("1.", "1."),
            (".50", ".50"),
            ("@attr", "@attr"),
            ("/@attr", "/@attr"),
            ("x-y.z/_u", "x-y.z/_u"),
        ] {
            let parsed = MatchExpr::parse(rule).unwrap();
            assert_eq!(parsed.to_string(), canonical, "{rule}");
            assert_eq!(MatchExpr::parse(canonical).unwrap(), parsed, "{rule}");
        }
    }

    #[test]
    fn serde_as_canonical_text() {
        let rule = MatchExpr::parse(WORDPRESS).unwrap();
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(json, serde_json::to_string(WORDPRESS).unwrap());
        let back: MatchExpr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rule);
        assert!(serde_json::from_str::<MatchExpr>("\"//x\"").is_err());
    }

    #[test]
    fn upgradable_from_rules() {
        assert_eq!(MatchExpr::from_upgradable_from(&[]), None);
        let one = MatchExpr::from_upgradable_from(&[("9.0.0".into(), Some("1".into()))]).unwrap();
        assert_eq!(
            one.to_string(),
            "/application/version = '9.0.0' and /application/release = '1'"
        );
        assert!(one.evaluate(&app_meta("9.0.0", "1")).unwrap());
        assert!(!one.evaluate(&app_meta("9.0.0", "2")).unwrap());
        assert!(!one.evaluate(&app_meta("9.0.1", "1")).unwrap());

        let several = MatchExpr::from_upgradable_from(&[
            ("1.0".into(), Some("1".into())),
            (" 2.0 ".into(), None),
        ])
        .unwrap();
        assert_eq!(
            several.to_string(),
            "/application/version = '1.0' and /application/release = '1' or /application/version = '2.0'"
        );
        assert!(several.evaluate(&app_meta("2.0", "7")).unwrap());
        assert!(several.evaluate(&app_meta("1.0", "1")).unwrap());
        assert!(!several.evaluate(&app_meta("1.0", "2")).unwrap());
        assert_eq!(MatchExpr::parse(&several.to_string()).unwrap(), several);

        let quoted =
            MatchExpr::from_upgradable_from(&[("1'0".into(), Some("a\"b".into()))]).unwrap();
        assert_eq!(
            quoted.to_string(),
            r#"/application/version = "1'0" and /application/release = 'a"b'"#
        );
        assert!(quoted.evaluate(&app_meta("1'0", "a\"b")).unwrap());
        assert_eq!(MatchExpr::parse(&quoted.to_string()).unwrap(), quoted);

        let both = MatchExpr::from_upgradable_from(&[
            ("1'\"".into(), None),
            ("2.0".into(), Some("x'\"".into())),
            ("3.0".into(), None),
        ])
        .unwrap();
        assert_eq!(
            both.to_string(),
            "1 = 0 or 1 = 0 or /application/version = '3.0'"
        );
        assert!(!both.evaluate(&app_meta("1'&quot;", "1")).unwrap());
        assert!(both.evaluate(&app_meta("3.0", "1")).unwrap());
    }

    // -----------------------------------------------------------------------------------------
    // Property tests

    fn name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "application",
            "version",
            "release",
            "and",
            "or",
            "not",
            "div",
            "mod",
            "x-y",
            "a.b",
            "_u",
            "é",
        ])
        .prop_map(str::to_owned)
    }

    fn path() -> impl Strategy<Value = Path> {
        (
            any::<bool>(),
            prop::collection::vec(name(), 0..4),
            prop::option::of(name()),
        )
            .prop_map(|(absolute, steps, attribute)| {
                let attribute = if steps.is_empty() && attribute.is_none() {
                    Some("a".to_owned())
                } else {
                    attribute
                };
                Path {
                    absolute,
                    steps,
                    attribute,
                }
            })
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        prop_oneof![
            path().prop_map(Expr::Path),
            "[a-z0-9. '<>=()/]{0,8}".prop_map(Expr::Literal),
            "[a-z0-9. \"]{0,8}".prop_map(Expr::Literal),
            prop::sample::select(vec!["0", "1", "10.", ".5", "3.25", "007"])
                .prop_map(|t| Expr::Number(NumberLit::new(t.to_owned()))),
        ]
    }

    fn cmp_ops(equality: bool) -> impl Strategy<Value = CmpOp> {
        let ops = if equality {
            vec![CmpOp::Eq, CmpOp::Ne]
        } else {
            vec![CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]
        };
        prop::sample::select(ops)
    }

    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(5, 48, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                (
                    inner.clone(),
                    prop::collection::vec((cmp_ops(true), inner.clone()), 1..3)
                )
                    .prop_map(|(first, rest)| Expr::Equality(Box::new(first), rest)),
                (
                    inner.clone(),
                    prop::collection::vec((cmp_ops(false), inner.clone()), 1..3)
                )
                    .prop_map(|(first, rest)| Expr::Relational(Box::new(first), rest)),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
    }

    fn fragments() -> impl Strategy<Value = String> {
        let fragment = prop::sample::select(vec![
            "/",
            "//",
            "@",
            "(",
            ")",
            "[",
            "]",
            "=",
            "!=",
            "<",
            "<=",
            ">",
            ">=",
            "|",
            "+",
            "-",
            "*",
            ",",
            ".",
            "..",
            "$",
            "::",
            ":",
            "'",
            "\"",
            "'x'",
            "1",
            "1.5",
            " ",
            "and",
            "or",
            "not",
            "not(",
            "application",
            "version",
            "a:b",
            "é",
            "!",
            "#",
        ]);
        prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
    }

    proptest! {
        #[test]
        fn display_parses_back_to_an_equal_value(root in expr()) {
            let rule = MatchExpr { root };
            let text = rule.to_string();
            let parsed = MatchExpr::parse(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&rule), "{}", text);
            prop_assert_eq!(parsed.map(|p| p.to_string()), Ok(text));
        }

        #[test]
        fn parse_never_panics(text in ".*") {
            let _ = MatchExpr::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_token_soup(text in fragments()) {
            match MatchExpr::parse(&text) {
                Ok(rule) => {
                    let again = MatchExpr::parse(&rule.to_string());
                    prop_assert_eq!(again, Ok(rule));
                }
                Err(err) => {
                    let position = err.position().unwrap();
                    prop_assert!(position <= text.len());
                    prop_assert!(text.is_char_boundary(position));
                }
            }
        }

        #[test]
        fn evaluation_never_panics(root in expr(), version in "[0-9a-z. ]{0,8}") {
            let rule = MatchExpr { root };
            let _ = rule.evaluate(&app_meta(&version, "1")).unwrap();
        }
    }
}
