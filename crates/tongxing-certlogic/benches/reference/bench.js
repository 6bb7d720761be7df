#!/usr/bin/env node
// The reference side of benches/reference.rs: the EU's own CertLogic engine, certlogic-js
// (pinned in package.json), over the same rules and data as the Rust bench.
//
//   node bench.js <rules.json> <data.json> [--seconds S]   timing; prints one line:
//     certlogic-js: N evaluations in S s = R evaluations/s
//   node bench.js <rules.json> <data.json> --results       no timing; prints one JSON object:
//     {"engine": "certlogic-js 1.2.2", "rules": [<Identifier>...],
//      "results": [[<result of rule r on document d>...] for each document d]}
//     a result is the value of `evaluate` as JSON (a date-time as its ISO string), or
//     {"error": "<message>"} where evaluation threw.
//
// <rules.json> is an array of DCC business rules (their Logic is evaluated); <data.json> an array
// of data documents {payload, external}. Every rule is evaluated on every document, document by
// document as a verifier checks one certificate against the whole rule set, with each evaluation
// in try/catch as the specification advises a verifier to do.
"use strict";

const fs = require("fs");
const { evaluate, implementationVersion } = require("certlogic-js");
const { validate } = require("certlogic-js/dist/validation");

const usage = () => {
    console.error("usage: node bench.js <rules.json> <data.json> [--seconds S | --results]");
    process.exit(2);
};

const args = process.argv.slice(2);
const positional = [];
let results = false;
let seconds = 3;
for (let i = 0; i < args.length; i++) {
    if (args[i] === "--results") {
        results = true;
    } else if (args[i] === "--seconds") {
        seconds = Number(args[++i]);
        if (!(seconds > 0)) usage();
    } else {
        positional.push(args[i]);
    }
}
if (positional.length !== 2) usage();

const rules = JSON.parse(fs.readFileSync(positional[0], "utf8"));
const data = JSON.parse(fs.readFileSync(positional[1], "utf8"));
const logics = rules.map((rule) => rule.Logic);

for (const rule of rules) {
    const issues = validate(rule.Logic);
    if (issues.length > 0) {
        console.error(`certlogic-js: rule ${rule.Identifier} is not valid CertLogic:`, issues);
        process.exit(1);
    }
}

if (results) {
    const table = data.map((document) =>
        logics.map((logic) => {
            try {
                return evaluate(logic, document);
            } catch (e) {
                return { error: String(e && e.message ? e.message : e) };
            }
        }),
    );
    process.stdout.write(
        JSON.stringify({
            engine: `certlogic-js ${implementationVersion}`,
            rules: rules.map((rule) => rule.Identifier),
            results: table,
        }) + "\n",
    );
    process.exit(0);
}

// One round: every rule on every document. Counting passes keeps the work observable.
const round = () => {
    let passed = 0;
    for (const document of data) {
        for (const logic of logics) {
            try {
                if (evaluate(logic, document) === true) passed++;
            } catch (e) {
                // A rule that throws is not passed.
            }
        }
    }
    return passed;
};

const perRound = logics.length * data.length;
const now = () => Number(process.hrtime.bigint()) / 1e9;

// Warm-up (lets the JIT optimise), about a third of the budget.
let sink = 0;
const warmUntil = now() + Math.min(1, seconds / 3);
while (now() < warmUntil) sink += round();

let rounds = 0;
const started = now();
let elapsed = 0;
do {
    sink += round();
    rounds++;
    elapsed = now() - started;
} while (elapsed < seconds);

if (sink < 0) console.error("unreachable");
const evaluations = rounds * perRound;
console.log(
    `certlogic-js: ${evaluations} evaluations in ${elapsed.toFixed(3)} s = ${Math.round(evaluations / elapsed)} evaluations/s`,
);
