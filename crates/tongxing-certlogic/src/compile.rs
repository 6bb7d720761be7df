//! Validation and compilation in one pass: a CertLogic JSON expression becomes a tree of [`Node`]s,
//! or a list of [`ValidationIssue`]s. Doing both in one walk keeps `validate` and `Expr::compile`
//! from ever disagreeing. Everything that can be decided without data is decided here: operators
//! become enum variants, `var` paths are split, literal arrays and `plusTime`/`dccDateOfBirth` on
//! literal strings are folded to constants.

use serde_json::Value;

use crate::ValidationIssue;
use crate::datetime::{DateTime, TimeUnit};
use crate::value::{int_of, render_json};

/// How deep expressions may nest. Real rules stay far below; the limit keeps compilation and
/// evaluation (both recursive) away from the end of the stack on hostile input.
pub(crate) const MAX_DEPTH: usize = 128;

/// How many issues validation reports; past them, one more issue says how many were left out.
/// With the bounds below, the issues of any expression take a few hundred kilobytes at most.
pub const MAX_ISSUES: usize = 100;
/// How much of an offending sub-expression an issue keeps, in bytes of JSON: a larger one is
/// kept as the start of its JSON text (a string ending in `…`), not copied whole.
pub const MAX_ISSUE_EXPR: usize = 256;
/// How long an issue's message may be, in bytes (longer ones are cut, ending in `…`).
const MAX_ISSUE_MESSAGE: usize = 512;

/// A compiled expression.
#[derive(Debug)]
pub(crate) enum Node {
    /// A literal string, integer or boolean, or an array with only such items (folded).
    Literal(Value),
    /// An array whose items need evaluation.
    Array(Box<[Node]>),
    Var(VarPath),
    If(Box<[Node; 3]>),
    StrictEquals(Box<[Node; 2]>),
    And(Box<[Node]>),
    /// `<`, `>`, `<=`, `>=`, `after`, `before`, `not-after`, `not-before` with 2 or 3 operands.
    Compare(Comparison, Box<[Node]>),
    In(Box<[Node; 2]>),
    Plus(Box<[Node; 2]>),
    Not(Box<Node>),
    /// The operands (list, lambda, initial value) and the weight of the lambda: its number of
    /// nodes, what each iteration is charged (see `budget`). Set by [`weigh`].
    Reduce(Box<[Node; 3]>, u64),
    PlusTime(Box<Node>, i64, TimeUnit),
    DccDateOfBirth(Box<Node>),
    ExtractFromUvci(Box<Node>, i64),
    /// A date-time known at compile time (`plusTime` or `dccDateOfBirth` of a literal string).
    DateTime(DateTime),
}

/// The comparison operators; the first four compare integers, the last four date-times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    Less,
    Greater,
    LessOrEqual,
    GreaterOrEqual,
    Before,
    After,
    NotAfter,
    NotBefore,
}

impl Comparison {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::Greater => ">",
            Comparison::LessOrEqual => "<=",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Before => "before",
            Comparison::After => "after",
            Comparison::NotAfter => "not-after",
            Comparison::NotBefore => "not-before",
        }
    }

    pub(crate) fn on_date_times(self) -> bool {
        matches!(self, Comparison::Before | Comparison::After | Comparison::NotAfter | Comparison::NotBefore)
    }

    /// Whether `left <op> right` holds.
    #[inline]
    pub(crate) fn holds<T: Ord>(self, left: T, right: T) -> bool {
        match self {
            Comparison::Less | Comparison::Before => left < right,
            Comparison::Greater | Comparison::After => left > right,
            Comparison::LessOrEqual | Comparison::NotAfter => left <= right,
            Comparison::GreaterOrEqual | Comparison::NotBefore => left >= right,
        }
    }
}

/// The operators of CertLogic 1.3 other than `var`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    If,
    StrictEquals,
    And,
    Compare(Comparison),
    In,
    Plus,
    Not,
    Reduce,
    PlusTime,
    DccDateOfBirth,
    ExtractFromUvci,
}

impl Operator {
    fn from_name(name: &str) -> Option<Operator> {
        Some(match name {
            "if" => Operator::If,
            "===" => Operator::StrictEquals,
            "and" => Operator::And,
            "<" => Operator::Compare(Comparison::Less),
            ">" => Operator::Compare(Comparison::Greater),
            "<=" => Operator::Compare(Comparison::LessOrEqual),
            ">=" => Operator::Compare(Comparison::GreaterOrEqual),
            "before" => Operator::Compare(Comparison::Before),
            "after" => Operator::Compare(Comparison::After),
            "not-after" => Operator::Compare(Comparison::NotAfter),
            "not-before" => Operator::Compare(Comparison::NotBefore),
            "in" => Operator::In,
            "+" => Operator::Plus,
            "!" => Operator::Not,
            "reduce" => Operator::Reduce,
            "plusTime" => Operator::PlusTime,
            "dccDateOfBirth" => Operator::DccDateOfBirth,
            "extractFromUVCI" => Operator::ExtractFromUvci,
            _ => return None,
        })
    }
}

/// A `var` path, split once.
#[derive(Debug)]
pub(crate) struct VarPath {
    /// Empty for `""`, the whole data context.
    pub(crate) segments: Box<[Segment]>,
    /// Whether the first segment is `current` or `accumulator`, for the data context that a
    /// `reduce` lambda sees, so that the lookup there needs no string comparison.
    pub(crate) reduce_field: Option<ReduceField>,
}

#[derive(Debug)]
pub(crate) struct Segment {
    /// The key, for objects.
    pub(crate) key: Box<str>,
    /// The index, for arrays, when the segment is all digits.
    pub(crate) index: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReduceField {
    Current,
    Accumulator,
}

impl ReduceField {
    pub(crate) fn from_key(key: &str) -> Option<ReduceField> {
        match key {
            "current" => Some(ReduceField::Current),
            "accumulator" => Some(ReduceField::Accumulator),
            _ => None,
        }
    }
}

impl VarPath {
    fn parse(path: &str) -> Option<VarPath> {
        if path.is_empty() {
            return Some(VarPath { segments: Box::new([]), reduce_field: None });
        }
        let mut segments = Vec::new();
        for fragment in path.split('.') {
            if fragment.is_empty() {
                return None;
            }
            let index = if fragment.bytes().all(|b| b.is_ascii_digit()) {
                // Too large for memory is simply never present.
                Some(fragment.parse().unwrap_or(usize::MAX))
            } else {
                None
            };
            segments.push(Segment { key: fragment.into(), index });
        }
        let reduce_field = ReduceField::from_key(&segments[0].key);
        Some(VarPath { segments: segments.into_boxed_slice(), reduce_field })
    }
}

/// Validates and compiles `logic`; the node is meaningful only when no issues were reported.
pub(crate) fn compile(logic: &Value) -> (Node, Vec<ValidationIssue>) {
    let mut compiler = Compiler { issues: Vec::new(), found: 0, pointer: String::new(), depth: 0 };
    let node = compiler.expr(logic);
    let mut issues = compiler.issues;
    if compiler.found > issues.len() {
        let more = compiler.found - issues.len();
        issues.push(ValidationIssue {
            path: String::new(),
            expr: Value::Null,
            message: format!("{more} more issue(s) not listed (only the first {MAX_ISSUES} are)"),
        });
    }
    (node, issues)
}

/// The number of nodes of `node` (each counts one, a folded literal too); sets the weight of
/// every `reduce` lambda on the way.
pub(crate) fn weigh(node: &mut Node) -> u64 {
    let children: u64 = match node {
        Node::Literal(_) | Node::DateTime(_) | Node::Var(_) => 0,
        Node::Array(items) | Node::And(items) | Node::Compare(_, items) => items.iter_mut().map(weigh).sum(),
        Node::If(ops) | Node::Reduce(ops, _) => ops.iter_mut().map(weigh).sum(),
        Node::StrictEquals(ops) | Node::In(ops) | Node::Plus(ops) => ops.iter_mut().map(weigh).sum(),
        Node::Not(op) | Node::PlusTime(op, ..) | Node::DccDateOfBirth(op) | Node::ExtractFromUvci(op, _) => weigh(op),
    };
    if let Node::Reduce(ops, weight) = node {
        *weight = weigh_only(&ops[1]);
    }
    children + 1
}

/// The number of nodes of `node`, using the weights [`weigh`] set on `reduce`s below.
fn weigh_only(node: &Node) -> u64 {
    let children: u64 = match node {
        Node::Literal(_) | Node::DateTime(_) | Node::Var(_) => 0,
        Node::Array(items) | Node::And(items) | Node::Compare(_, items) => items.iter().map(weigh_only).sum(),
        Node::If(ops) => ops.iter().map(weigh_only).sum(),
        Node::Reduce(ops, weight) => weigh_only(&ops[0]) + weight + weigh_only(&ops[2]),
        Node::StrictEquals(ops) | Node::In(ops) | Node::Plus(ops) => ops.iter().map(weigh_only).sum(),
        Node::Not(op) | Node::PlusTime(op, ..) | Node::DccDateOfBirth(op) | Node::ExtractFromUvci(op, _) => {
            weigh_only(op)
        }
    };
    children + 1
}

struct Compiler {
    /// The first [`MAX_ISSUES`] issues.
    issues: Vec<ValidationIssue>,
    /// How many issues were found, listed or not.
    found: usize,
    /// JSON Pointer (RFC 6901) of the expression being compiled.
    pointer: String,
    depth: usize,
}

/// The placeholder compiled in place of an invalid expression; never evaluated.
fn invalid() -> Node {
    Node::Literal(Value::Null)
}

impl Compiler {
    /// Records an issue (within the bounds above) and gives the placeholder node.
    fn issue(&mut self, expr: &Value, mut message: String) -> Node {
        self.found += 1;
        if self.issues.len() < MAX_ISSUES {
            let (text, complete) = render_json(expr, MAX_ISSUE_EXPR);
            let expr = if complete { expr.clone() } else { Value::String(text) };
            if message.len() > MAX_ISSUE_MESSAGE {
                let mut cut = MAX_ISSUE_MESSAGE;
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                message.truncate(cut);
                message.push('…');
            }
            self.issues.push(ValidationIssue { path: self.pointer.clone(), expr, message });
        }
        invalid()
    }

    /// Compiles the child at `step` (an object key or an array index) of the current pointer.
    fn child(&mut self, step: &dyn std::fmt::Display, expr: &Value) -> Node {
        let len = self.pointer.len();
        let step = step.to_string().replace('~', "~0").replace('/', "~1");
        self.pointer.push('/');
        self.pointer.push_str(&step);
        let node = self.expr(expr);
        self.pointer.truncate(len);
        node
    }

    fn expr(&mut self, expr: &Value) -> Node {
        if self.depth >= MAX_DEPTH {
            // The offending subtree is not copied into the issue: it is the deep part.
            return self.issue(
                &Value::String("…".to_owned()),
                format!("expression is nested more than {MAX_DEPTH} levels deep"),
            );
        }
        self.depth += 1;
        let node = self.expr_inner(expr);
        self.depth -= 1;
        node
    }

    fn expr_inner(&mut self, expr: &Value) -> Node {
        match expr {
            Value::String(_) | Value::Bool(_) => Node::Literal(expr.clone()),
            Value::Number(n) => match int_of(n) {
                Some(i) => Node::Literal(Value::from(i)),
                None => self.issue(expr, format!("{n} is a non-integer number")),
            },
            Value::Null => self.issue(expr, "invalid CertLogic expression".to_owned()),
            Value::Array(items) => self.array(items),
            Value::Object(map) => self.object(expr, map),
        }
    }

    fn array(&mut self, items: &[Value]) -> Node {
        let nodes: Vec<Node> = items.iter().enumerate().map(|(i, item)| self.child(&i, item)).collect();
        if nodes.iter().all(|n| matches!(n, Node::Literal(_))) {
            // Fold to one literal: evaluating it then borrows instead of building an array.
            Node::Literal(Value::Array(
                nodes
                    .into_iter()
                    .map(|n| match n {
                        Node::Literal(v) => v,
                        _ => unreachable!("checked above"),
                    })
                    .collect(),
            ))
        } else {
            Node::Array(nodes.into_boxed_slice())
        }
    }

    fn object(&mut self, expr: &Value, map: &serde_json::Map<String, Value>) -> Node {
        if map.len() != 1 {
            return self.issue(expr, format!("expression object must have exactly one key, but it has {}", map.len()));
        }
        let (name, values) = map.iter().next().expect("one key");
        if name == "var" {
            return self.var(expr, values);
        }
        let Value::Array(operands) = values else {
            return self.issue(expr, "operation not of the form { \"<operator>\": [ <values...> ] }".to_owned());
        };
        let Some(op) = Operator::from_name(name) else {
            return self.issue(expr, format!("unrecognised operator: \"{name}\""));
        };
        self.operation(expr, name, op, operands)
    }

    fn var(&mut self, expr: &Value, path: &Value) -> Node {
        let Value::String(path) = path else {
            return self.issue(expr, "not of the form { \"var\": \"<path>\" }".to_owned());
        };
        match VarPath::parse(path) {
            Some(path) => Node::Var(path),
            None => self.issue(expr, format!("data access path doesn't have a valid format: {path}")),
        }
    }

    /// Compiles operands `0..max` (those present), so that their issues are reported even when
    /// the count is wrong.
    fn operands(&mut self, name: &str, operands: &[Value], max: usize) -> Vec<Node> {
        operands
            .iter()
            .take(max)
            .enumerate()
            .map(|(i, operand)| {
                let len = self.pointer.len();
                self.pointer.push('/');
                self.pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
                let node = self.child(&i, operand);
                self.pointer.truncate(len);
                node
            })
            .collect()
    }

    /// Compiles an operation. Kept lean because it is on the recursive path; the checks and the
    /// construction of the node are in helpers.
    fn operation(&mut self, expr: &Value, name: &str, op: Operator, operands: &[Value]) -> Node {
        let before = self.found;
        if let Some(message) = arity_issue(op, name, operands.len()) {
            self.issue(expr, message);
        }
        let nodes = self.operands(name, operands, compiled_operand_count(op, operands.len()));
        self.check_parameters(expr, op, operands);
        if self.found > before {
            return invalid();
        }
        self.build(expr, op, operands, nodes)
    }

    /// Checks the operands that are literal parameters rather than expressions.
    fn check_parameters(&mut self, expr: &Value, op: Operator, operands: &[Value]) {
        let non_integer = operands.get(1).filter(|v| v.as_number().and_then(int_of).is_none());
        match op {
            Operator::PlusTime => {
                if let Some(v) = non_integer {
                    self.issue(
                        expr,
                        format!("\"amount\" argument (#2) of \"plusTime\" must be an integer, but it is: {}", shown(v)),
                    );
                }
                if let Some(unit) = operands.get(2)
                    && unit.as_str().and_then(TimeUnit::from_name).is_none()
                {
                    self.issue(
                        expr,
                        format!(
                            "\"unit\" argument (#3) of \"plusTime\" must be a string equal to one of {}, but it is: {}",
                            TimeUnit::ALL,
                            shown(unit)
                        ),
                    );
                }
            }
            Operator::ExtractFromUvci => {
                if let Some(v) = non_integer {
                    self.issue(
                        expr,
                        format!(
                            "\"index\" argument (#2) of \"extractFromUVCI\" must be an integer, but it is: {}",
                            shown(v)
                        ),
                    );
                }
            }
            _ => {}
        }
    }

    /// Builds the node of a valid operation from its compiled operands.
    fn build(&mut self, expr: &Value, op: Operator, operands: &[Value], nodes: Vec<Node>) -> Node {
        let mut nodes = nodes.into_iter();
        let mut take = || nodes.next().expect("operand count checked");
        let int_parameter = || operands[1].as_number().and_then(int_of).expect("checked by check_parameters");
        match op {
            Operator::If => Node::If(Box::new([take(), take(), take()])),
            Operator::StrictEquals => Node::StrictEquals(Box::new([take(), take()])),
            Operator::In => Node::In(Box::new([take(), take()])),
            Operator::Plus => Node::Plus(Box::new([take(), take()])),
            Operator::Not => Node::Not(Box::new(take())),
            Operator::Reduce => Node::Reduce(Box::new([take(), take(), take()]), 0),
            Operator::And => Node::And(nodes.collect()),
            Operator::Compare(c) => Node::Compare(c, nodes.collect()),
            Operator::PlusTime => {
                let amount = int_parameter();
                let unit = operands[2].as_str().and_then(TimeUnit::from_name).expect("checked by check_parameters");
                let operand = take();
                self.date_operand(expr, "plusTime", operand, |s| DateTime::parse(s)?.plus(amount, unit))
                    .unwrap_or_else(|operand| Node::PlusTime(Box::new(operand), amount, unit))
            }
            Operator::DccDateOfBirth => {
                let operand = take();
                self.date_operand(expr, "dccDateOfBirth", operand, DateTime::parse_date_of_birth)
                    .unwrap_or_else(|operand| Node::DccDateOfBirth(Box::new(operand)))
            }
            Operator::ExtractFromUvci => {
                let index = int_parameter();
                Node::ExtractFromUvci(Box::new(take()), index)
            }
        }
    }

    /// Folds a date operation on a literal operand to a constant: `Ok(constant node)`, or an
    /// issue when the literal can never work, or `Err(operand)` when it must wait for data.
    fn date_operand(
        &mut self,
        expr: &Value,
        name: &str,
        operand: Node,
        convert: impl FnOnce(&str) -> Result<DateTime, crate::datetime::DateError>,
    ) -> Result<Node, Node> {
        match &operand {
            Node::Literal(Value::String(s)) => Ok(match convert(s) {
                Ok(dt) => Node::DateTime(dt),
                Err(e) => self.issue(
                    expr,
                    format!("date argument (#1) of \"{name}\": \"{s}\" {e}"),
                ),
            }),
            Node::Literal(v) => Ok(self.issue(
                expr,
                format!(
                    "date argument (#1) of \"{name}\" must be a string (or an expression giving one), but it is the literal {}",
                    shown(v)
                ),
            )),
            // Date-times are not strings: plusTime(plusTime(…)) is invalid (spec, plusTime).
            Node::DateTime(_) | Node::PlusTime(..) | Node::DccDateOfBirth(_) => Ok(self.issue(
                expr,
                format!(
                    "date argument (#1) of \"{name}\" must be a string, but it is a date-time operation; date-times cannot be offset again or re-parsed"
                ),
            )),
            _ => Err(operand),
        }
    }
}

/// A value shown in an issue's message: its JSON, cut after a few hundred bytes.
fn shown(v: &Value) -> String {
    render_json(v, MAX_ISSUE_EXPR).0
}

/// The issue with the number of operands, if any (messages as in the validation test suite).
fn arity_issue(op: Operator, name: &str, n: usize) -> Option<String> {
    match op {
        Operator::If if n != 3 => {
            Some(format!("an \"if\"-operation must have exactly 3 values/operands, but it has {n}"))
        }
        Operator::And if n < 2 => Some(format!("an \"and\" operation must have at least 2 operands, but it has {n}")),
        Operator::Compare(_) if !(2..=3).contains(&n) => {
            Some(format!("an operation with operator \"{name}\" must have 2 or 3 operands, but it has {n}"))
        }
        Operator::StrictEquals | Operator::In | Operator::Plus if n != 2 => {
            Some(format!("an operation with operator \"{name}\" must have 2 operands, but it has {n}"))
        }
        Operator::Not if n != 1 => {
            Some(format!("a !-operation (logical not/negation) must have exactly 1 operand, but it has {n}"))
        }
        Operator::Reduce if n != 3 => {
            Some(format!("a \"reduce\"-operation must have exactly 3 values/operands, but it has {n}"))
        }
        Operator::PlusTime if n != 3 => {
            Some(format!("a \"plusTime\"-operation must have exactly 3 values/operands, but it has {n}"))
        }
        Operator::DccDateOfBirth if n != 1 => {
            Some(format!("a \"dccDateOfBirth\"-operation must have exactly 1 operand, but it has {n}"))
        }
        Operator::ExtractFromUvci if n != 2 => {
            Some(format!("an \"extractFromUVCI\"-operation must have exactly 2 values/operands, but it has {n}"))
        }
        _ => None,
    }
}

/// How many leading operands are expressions to compile (the rest are literal parameters, or
/// surplus operands that are not looked at).
fn compiled_operand_count(op: Operator, n: usize) -> usize {
    match op {
        Operator::And => n,
        Operator::Compare(_) | Operator::If | Operator::Reduce => 3,
        Operator::StrictEquals | Operator::In | Operator::Plus => 2,
        Operator::Not | Operator::DccDateOfBirth | Operator::PlusTime | Operator::ExtractFromUvci => 1,
    }
}
