//! Evaluations per second of a realistic rule on one core, with plain `std::time`.
//! Run: `cargo bench -p tongxing-certlogic --bench eval`.
//!
//! The rule is in the style of the EU template TR-EU-0005 (the 48-hour test rule) combined with
//! the type and result checks that accompany it: five `var`s into a DCC test payload, an `in`
//! against a value set from the external data, four `plusTime`s on data strings with offsets,
//! two date-time comparisons, `===`, `!`, `and` and `if`.
//!
//! Then how long an evaluation takes to be stopped by its budget (`Limits::DEFAULT`) in each of
//! the three shapes of `reduce` that used to take the process down: an accumulator used twice
//! per step, one nested a level deeper per item, reduces nested five deep over 40 items.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tongxing_certlogic::{EvalError, Expr, Limits};

fn rule() -> Value {
    json!({
        "if": [
            {"var": "payload.t.0"},
            {"and": [
                {"in": [{"var": "payload.t.0.tt"}, {"var": "external.valueSets.covid-19-lab-test-type"}]},
                {"===": [{"var": "payload.t.0.tr"}, "260415000"]},
                {"!": [
                    {"after": [
                        {"plusTime": [{"var": "payload.t.0.sc"}, 0, "hour"]},
                        {"plusTime": [{"var": "external.validationClock"}, 0, "hour"]}
                    ]}
                ]},
                {"not-before": [
                    {"plusTime": [{"var": "payload.t.0.sc"}, 48, "hour"]},
                    {"plusTime": [{"var": "external.validationClock"}, 0, "day"]}
                ]}
            ]},
            true
        ]
    })
}

fn data() -> Value {
    json!({
        "payload": {
            "ver": "1.3.0",
            "nam": {"fn": "Wang", "fnt": "WANG", "gn": "Xiaoming", "gnt": "XIAOMING"},
            "dob": "1985-04-12",
            "t": [{
                "tg": "840539006",
                "tt": "LP6464-4",
                "nm": "Roche LightCycler qPCR",
                "sc": "2021-11-17T09:20:00+08:00",
                "tr": "260415000",
                "tc": "Service area test point Xiangshan",
                "co": "CN",
                "is": "Tongxing test authority",
                "ci": "URN:UVCI:01:CN:DADFCC47C7334E45A906DB12FD859FB7#1"
            }]
        },
        "external": {
            "validationClock": "2021-11-18T20:00:00+08:00",
            "valueSetProtocolVersion": "1.0",
            "valueSets": {
                "covid-19-lab-test-type": ["LP6464-4", "LP217198-3"],
                "covid-19-lab-result": ["260415000", "260373001"],
                "disease-agent-targeted": ["840539006"],
                "country-2-codes": ["AT", "BE", "BG", "CN", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"]
            },
            "countryCode": "CN",
            "exp": "2022-11-17T00:00:00Z",
            "iat": "2021-11-17T10:00:00Z"
        }
    })
}

/// Runs `f` repeatedly for about `budget`, returning evaluations per second.
fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    // Warm-up.
    for _ in 0..10_000 {
        f();
    }
    let mut iterations: u64 = 0;
    let started = Instant::now();
    loop {
        for _ in 0..10_000 {
            f();
        }
        iterations += 10_000;
        let elapsed = started.elapsed();
        if elapsed >= budget {
            return iterations as f64 / elapsed.as_secs_f64();
        }
    }
}

fn main() {
    let budget = Duration::from_secs(2);
    let logic = rule();
    let expr = Expr::compile(&logic).expect("the benchmark rule is valid CertLogic");
    let data = data();
    assert_eq!(expr.evaluate(&data).unwrap(), json!(true));
    let mut late = data.clone();
    late["external"]["validationClock"] = json!("2021-11-19T10:00:00+08:00");
    assert_eq!(expr.evaluate(&late).unwrap(), json!(false));

    let per_second = measure(budget, || {
        black_box(expr.evaluate(black_box(&data)).unwrap());
    });
    println!(
        "TR-EU-0005-like rule, Expr::evaluate:        {per_second:>12.0} evaluations/s ({:.0} ns each, one core)",
        1e9 / per_second
    );

    let per_second = measure(budget, || {
        black_box(expr.evaluate_truthy(black_box(&data)).unwrap());
    });
    println!(
        "TR-EU-0005-like rule, Expr::evaluate_truthy: {per_second:>12.0} evaluations/s ({:.0} ns each, one core)",
        1e9 / per_second
    );

    let per_second = measure(budget, || {
        black_box(Expr::compile(black_box(&logic)).unwrap());
    });
    println!("TR-EU-0005-like rule, Expr::compile:         {per_second:>12.0} compilations/s");

    let items = |n: i64| Value::Array((0..n).map(Value::from).collect());
    let mut lambda = json!({"+": [{"var": "accumulator"}, 1]});
    for _ in 0..4 {
        lambda = json!({"+": [{"var": "accumulator"}, {"reduce": [items(40), lambda, 0]}]});
    }
    let shapes = [
        (
            "accumulator used twice, 64 items",
            json!({"reduce": [{"var": "xs"}, [{"var": "accumulator"}, {"var": "accumulator"}], 0]}),
            json!({"xs": items(64)}),
        ),
        (
            "accumulator nested per item, 100,000 items",
            json!({"reduce": [{"var": "xs"}, [{"var": "accumulator"}], 0]}),
            json!({"xs": items(100_000)}),
        ),
        (
            "reduces nested 5 deep, 40 items each",
            json!({"reduce": [{"var": "xs"}, lambda, 0]}),
            json!({"xs": items(40)}),
        ),
    ];
    for (name, logic, data) in shapes {
        let expr = Expr::compile(&logic).unwrap();
        let (result, usage) = expr.evaluate_with(&data, &Limits::DEFAULT);
        let err = result.expect_err("past the budget");
        let runs = 20;
        let started = Instant::now();
        for _ in 0..runs {
            black_box(expr.evaluate_truthy(black_box(&data)).unwrap_err());
        }
        let each = started.elapsed() / runs;
        let limit = match err {
            EvalError::BudgetExceeded { limit, .. } => limit.to_string(),
            other => panic!("{other}"),
        };
        println!("Stopped by the budget ({limit}, after {} steps): {name}: {each:.1?}", usage.steps);
    }
}
