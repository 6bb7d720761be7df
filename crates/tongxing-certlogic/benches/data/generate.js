#!/usr/bin/env node
// Writes rules.json and data.json beside this file: the rule set and the data set on which
// benches/reference.rs compares tongxing-certlogic with certlogic-js. Deterministic (no clock,
// no randomness): run `node generate.js` after editing and commit both outputs.
//
// The rules are written in the shape of the EU DCC business rules (the template rules
// GR-EU-…, VR-EU-…, TR-EU-…, RR-EU-… of the EU gateway and the national rules built on them);
// they are modelled on those rules from memory, not copies of any member state's published
// rules (see README.md).
"use strict";

const fs = require("fs");
const path = require("path");

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

const v = (field) => ({ var: `payload.v.0${field ? "." + field : ""}` });
const t = (field) => ({ var: `payload.t.0${field ? "." + field : ""}` });
const r = (field) => ({ var: `payload.r.0${field ? "." + field : ""}` });
const clock = (amount = 0, unit = "day") => ({
    plusTime: [{ var: "external.validationClock" }, amount, unit],
});
const at = (operand, amount = 0, unit = "day") => ({ plusTime: [operand, amount, unit] });
const valueSet = (id) => ({ var: `external.valueSets.${id}` });
// "if the certificate has this kind of event, check; otherwise the rule does not apply"
const whenPresent = (event, check) => ({ if: [event, check, true] });

const NAA = "LP6464-4";
const RAT = "LP217198-3";
const NOT_DETECTED = "260415000";
const JANSSEN = "EU/1/20/1525";
const EMA_APPROVED = [
    "EU/1/20/1528", // Comirnaty
    "EU/1/20/1507", // Spikevax
    "EU/1/21/1529", // Vaxzevria
    "EU/1/20/1525", // COVID-19 Vaccine Janssen
    "EU/1/21/1618", // Nuvaxovid
];
const WHO_EUL = [
    ...EMA_APPROVED,
    "Covishield",
    "BBIBP-CorV",
    "CoronaVac",
    "Covaxin",
    "R-COVI",
    "Covid-19-recombinant",
];

// The holder's certificate identifier, whichever kind of certificate it is.
const anyCi = { if: [v(), v("ci"), { if: [t(), t("ci"), r("ci")] }] };
// Under 18 at the validation clock (the specification's own example of dccDateOfBirth).
const isMinor = (years) => ({
    after: [{ dccDateOfBirth: [{ var: "payload.dob" }] }, clock(-years, "year")],
});
// A primary course (not a booster): at most 2 doses, dose number not beyond the series, and not
// the second dose of the one-dose Janssen vaccine (which counts as a booster).
const isPrimaryCourse = {
    and: [
        { "<": [v("dn"), 3] },
        { "<=": [v("dn"), v("sd")] },
        { "!": [{ and: [{ "===": [v("mp"), JANSSEN] }, { ">=": [v("dn"), 2] }] }] },
    ],
};

const rules = [];
const rule = (Identifier, Country, CertificateType, AffectedFields, desc, Logic, extra = {}) => {
    rules.push({
        Identifier,
        Type: extra.Type || "Acceptance",
        Country,
        Version: extra.Version || "1.0.0",
        SchemaVersion: "1.0.0",
        Engine: "CERTLOGIC",
        EngineVersion: "0.7.5",
        CertificateType,
        Description: [{ lang: "en", desc }],
        ValidFrom: extra.ValidFrom || "2021-07-01T00:00:00Z",
        ValidTo: extra.ValidTo || "2030-06-01T00:00:00Z",
        AffectedFields,
        Logic,
    });
};

// --- general -----------------------------------------------------------------------------------

rule("GR-EU-0000", "EU", "General", ["ver"],
    "The schema version of the certificate (\"ver\") must be one of the published 1.x versions.",
    { in: [{ var: "payload.ver" }, ["1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.2.1", "1.3.0"]] });

rule("GR-EU-0001", "EU", "General", ["v.0.tg", "t.0.tg", "r.0.tg"],
    "The \"disease or agent targeted\" must be COVID-19 of the value set list.",
    {
        and: [
            whenPresent(v(), { in: [v("tg"), valueSet("disease-agent-targeted")] }),
            whenPresent(t(), { in: [t("tg"), valueSet("disease-agent-targeted")] }),
            whenPresent(r(), { in: [r("tg"), valueSet("disease-agent-targeted")] }),
        ],
    });

rule("GR-EU-0002", "EU", "General", ["v", "t", "r"],
    "The certificate must hold exactly one kind of event: a vaccination, a test or a recovery.",
    {
        "===": [
            {
                "+": [
                    { "+": [{ if: [v(), 1, 0] }, { if: [t(), 1, 0] }] },
                    { if: [r(), 1, 0] },
                ],
            },
            1,
        ],
    });

rule("GR-EU-0003", "EU", "General", ["dob"],
    "The date of birth, where given, must not lie after the date of verification.",
    {
        if: [
            { var: "payload.dob" },
            { "not-after": [{ dccDateOfBirth: [{ var: "payload.dob" }] }, clock()] },
            true,
        ],
    });

rule("GR-EU-0004", "EU", "General", ["v.0.ci", "t.0.ci", "r.0.ci"],
    "The unique certificate identifier must be of version 01 (\"01:\", or \"01DE/\" as Germany writes it).",
    { in: [{ extractFromUVCI: [anyCi, 0] }, ["01", "01DE"]] });

rule("GR-NL-0001", "NL", "General", ["v.0.ci", "t.0.ci", "r.0.ci"],
    "Certificates from issuing entities whose keys were misused are not accepted.",
    {
        "!": [
            {
                in: [
                    { extractFromUVCI: [anyCi, 2] },
                    ["AOK-TEST-7", "MINSANTE-PRV-2", "CNAM-X99", "V3RIFY"],
                ],
            },
        ],
    },
    { Type: "Invalidation", Version: "1.0.2" });

rule("GR-EU-0005", "EU", "General", ["v.0.co", "t.0.co", "r.0.co"],
    "The country of the event must be in the country value set list.",
    {
        and: [
            whenPresent(v(), { in: [v("co"), valueSet("country-2-codes")] }),
            whenPresent(t(), { in: [t("co"), valueSet("country-2-codes")] }),
            whenPresent(r(), { in: [r("co"), valueSet("country-2-codes")] }),
        ],
    });

// --- vaccination -----------------------------------------------------------------------------

rule("VR-EU-0000", "EU", "Vaccination", ["v.1"],
    "At most one v-event.",
    { "!": [{ var: "payload.v.1" }] });

rule("VR-EU-0001", "EU", "Vaccination", ["v.0", "v.0.mp"],
    "Only vaccines in the allowed valueset that have been approved by the EMA are allowed.",
    whenPresent(v(), { in: [v("mp"), EMA_APPROVED] }));

rule("VR-EU-0002", "EU", "Vaccination", ["v.0", "v.0.dn", "v.0.sd"],
    "The vaccination schedule must be complete (e.g., 1/1, 2/2).",
    whenPresent(v(), { ">=": [v("dn"), v("sd")] }));

rule("VR-EU-0003", "EU", "Vaccination", ["v.0", "v.0.dt"],
    "Verification Datetime must be more than 14 days after the date of vaccination.",
    whenPresent(v(), { "not-before": [clock(), at(v("dt"), 14)] }));

rule("VR-EU-0004", "EU", "Vaccination", ["v.0", "v.0.vp", "v.0.mp", "v.0.ma"],
    "The vaccine type, product and marketing authorisation holder must be in the value set lists.",
    whenPresent(v(), {
        and: [
            { in: [v("vp"), valueSet("sct-vaccines-covid-19")] },
            { in: [v("mp"), valueSet("vaccines-covid-19-names")] },
            { in: [v("ma"), valueSet("vaccines-covid-19-auth-holders")] },
        ],
    }));

rule("VR-EU-0005", "EU", "Vaccination", ["v.0", "v.0.dn", "v.0.sd", "v.0.mp", "v.0.dt"],
    "A completed primary course is accepted for 270 days after its last dose; a booster has no end date.",
    whenPresent(v(), {
        if: [isPrimaryCourse, { "not-after": [clock(), at(v("dt"), 270)] }, true],
    }),
    { ValidFrom: "2022-02-01T00:00:00Z" });

rule("VR-AT-0001", "AT", "Vaccination", ["v.0", "v.0.mp", "v.0.dn", "v.0.sd", "v.0.dt"],
    "A single dose of COVID-19 Vaccine Janssen is accepted from day 22 after vaccination.",
    {
        if: [
            { and: [{ "===": [v("mp"), JANSSEN] }, { "===": [v("dn"), 1] }, { "===": [v("sd"), 1] }] },
            { "not-before": [clock(), at(v("dt"), 22)] },
            true,
        ],
    });

rule("VR-DE-0004", "DE", "Vaccination", ["v.0", "v.0.dn", "v.0.sd", "v.0.dt", "dob"],
    "Minors (under 18) need a complete primary course only; adults need a booster once 180 days have passed since the primary course.",
    whenPresent(v(), {
        if: [
            isMinor(18),
            { ">=": [v("dn"), v("sd")] },
            { if: [isPrimaryCourse, { "not-after": [clock(), at(v("dt"), 180)] }, true] },
        ],
    }));

rule("VR-IT-0002", "IT", "Vaccination", ["v", "v.0.mp"],
    "Every vaccination in the certificate must be with a vaccine authorised by the EMA or listed by the WHO.",
    { reduce: [{ var: "payload.v" }, { and: [{ var: "accumulator" }, { in: [{ var: "current.mp" }, WHO_EUL] }] }, true] });

rule("VR-FR-0003", "FR", "Vaccination", ["v.0", "v.0.dt"],
    "The date of vaccination must not lie in the future, nor before the first authorisation (2020-12-21).",
    whenPresent(v(), { "not-after": [at("2020-12-21"), at(v("dt")), clock()] }));

// --- test ------------------------------------------------------------------------------------

rule("TR-EU-0000", "EU", "Test", ["t.1"],
    "At most one t-event.",
    { "!": [{ var: "payload.t.1" }] });

rule("TR-EU-0001", "EU", "Test", ["t.0", "t.0.tt"],
    "The test type must be one of the value set list (RAT OR NAA).",
    whenPresent(t(), { in: [t("tt"), valueSet("covid-19-lab-test-type")] }));

rule("TR-EU-0002", "EU", "Test", ["t.0", "t.0.tt", "t.0.ma"],
    "If the test type is \"RAT\" then the test must be in the list of accepted RAT tests.",
    { if: [{ "===": [t("tt"), RAT] }, { in: [t("ma"), valueSet("covid-19-lab-test-manufacturer-and-name")] }, true] });

rule("TR-EU-0003", "EU", "Test", ["t.0", "t.0.tt", "t.0.sc"],
    "If the test type is \"NAA\" (PCR) then the sample must have been collected less than 72 hours before the verification datetime.",
    { if: [{ "===": [t("tt"), NAA] }, { before: [clock(0, "hour"), at(t("sc"), 72, "hour")] }, true] });

rule("TR-EU-0004", "EU", "Test", ["t.0", "t.0.tr"],
    "The test result must be negative (\"not detected\").",
    whenPresent(t(), { "===": [t("tr"), NOT_DETECTED] }));

rule("TR-EU-0005", "EU", "Test", ["t.0", "t.0.tt", "t.0.sc"],
    "If the test type is \"RAT\" then the sample must have been collected not in the future and at most 48 hours before the verification datetime.",
    {
        if: [
            { "===": [t("tt"), RAT] },
            { "not-after": [at(t("sc"), 0, "hour"), clock(0, "hour"), at(t("sc"), 48, "hour")] },
            true,
        ],
    });

rule("TR-BE-0002", "BE", "Test", ["t", "t.0.tr"],
    "Every test in the certificate must be negative.",
    { reduce: [{ var: "payload.t" }, { and: [{ var: "accumulator" }, { "===": [{ var: "current.tr" }, NOT_DETECTED] }] }, true] });

// --- recovery ----------------------------------------------------------------------------------

rule("RR-EU-0000", "EU", "Recovery", ["r.1"],
    "At most one r-event.",
    { "!": [{ var: "payload.r.1" }] });

rule("RR-EU-0001", "EU", "Recovery", ["r.0", "r.0.df", "r.0.du"],
    "The Verification Datetime must be between \"Certificate Valid From\" and \"Certificate Valid Until\".",
    whenPresent(r(), { "not-after": [at(r("df")), clock(), at(r("du"))] }));

rule("RR-EU-0002", "EU", "Recovery", ["r.0", "r.0.fr"],
    "The Verification Datetime must be more than 11 days and less than 180 days after the date of the first positive test.",
    whenPresent(r(), { "not-after": [at(r("fr"), 11), clock(), at(r("fr"), 180)] }));

rule("RR-DE-0003", "DE", "Recovery", ["r.0", "r.0.fr", "dob"],
    "Minors (under 12) are treated as recovered for 12 months after the first positive test, everyone else for 90 days.",
    whenPresent(r(), {
        if: [
            isMinor(12),
            { before: [clock(), at(r("fr"), 12, "month")] },
            { before: [clock(), at(r("fr"), 90)] },
        ],
    }));

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

const COUNTRIES = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS " +
    "BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE " +
    "EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM " +
    "HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC " +
    "LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA " +
    "NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
    "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO " +
    "TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW"
).split(" ");

const RAT_DEVICES = (
    "1065 1097 1114 1144 1162 1173 1180 1190 1199 1215 1218 1223 1225 1232 1236 1242 1244 1246 1253 " +
    "1257 1263 1266 1267 1268 1271 1278 1295 1296 1304 1319 1331 1333 1341 1343 1360 1363 1365 1375 " +
    "1392 1420 1437 1443 1456 1466 1468 1471 1481 1484 1489 1490 1501 1573 1581 1604 1606 1654 1736 " +
    "1739 1747 1759 1762 1763 1764 1767 1769 1815 1822 1833 1844 1870 1884 1906 1919 1934 1957 2010 " +
    "2013 2017 2029 2031 2035 2052 2067 2072 2074 2078 2079 2089 2090 2097 2098 2101 2103 2104 2107 " +
    "2108 2109 2116 2124 2128 2130 2139 2143 2150 2164 2183 2200 2201 2228 2241 2242 2243 2246 2247 " +
    "2257 2260 2271 2273 2282 2290 2297 2301 2317 2350 2374 2380 2387 2414 2419 2494 2506 2507 2524 " +
    "2533 2552 2555 2570 2574 2578 2579 2584 2585 2586 2587 2588 2600 2601 2602 2603 2604 2606 2618 " +
    "2640 2641 2642 2643 2692 2695 2698 2718 2721 2742 2756 2766 2767 2768 2803 2812 2819 344 345 768 770"
).split(" ");

const VALUE_SETS = {
    "country-2-codes": COUNTRIES,
    "covid-19-lab-result": ["260415000", "260373001"],
    "covid-19-lab-test-manufacturer-and-name": RAT_DEVICES,
    "covid-19-lab-test-type": [NAA, RAT],
    "disease-agent-targeted": ["840539006"],
    "sct-vaccines-covid-19": ["1119305005", "1119349007", "J07BX03"],
    "vaccines-covid-19-auth-holders": [
        "ORG-100001699", "ORG-100030215", "ORG-100001417", "ORG-100031184", "ORG-100006270",
        "ORG-100013793", "ORG-100020693", "ORG-100010771", "ORG-100024420", "ORG-100032020",
        "ORG-100001981", "ORG-100007893", "ORG-100023050", "ORG-100026614", "ORG-100033914",
        "ORG-100000788", "Gamaleya-Research-Institute", "Vector-Institute", "Sinovac-Biotech",
        "Bharat-Biotech", "Fiocruz", "R-Pharm-CJSC", "Chumakov-Federal-Scientific-Center",
        "Sinopharm-WIBP", "Vaxine", "Biological-E",
    ],
    "vaccines-covid-19-names": [
        "EU/1/20/1528", "EU/1/20/1507", "EU/1/21/1529", "EU/1/20/1525", "EU/1/21/1618",
        "EU/1/21/1624", "EU/1/22/1680", "CVnCoV", "NVX-CoV2373", "Sputnik-V", "Convidecia",
        "EpiVacCorona", "BBIBP-CorV", "Inactivated-SARS-CoV-2-Vero-Cell", "CoronaVac", "Covaxin",
        "Covishield", "Covid-19-recombinant", "R-COVI", "CoviVac", "Sputnik-Light", "Hayat-Vax",
        "Abdala", "WIBP-CorV", "MVC-COV1901", "COVID-19-vaccine-Moderna", "Vaxzevria",
        "Corbevax",
    ],
};

const VACCINES = {
    comirnaty: { vp: "1119349007", mp: "EU/1/20/1528", ma: "ORG-100030215" },
    spikevax: { vp: "1119349007", mp: "EU/1/20/1507", ma: "ORG-100031184" },
    vaxzevria: { vp: "J07BX03", mp: "EU/1/21/1529", ma: "ORG-100001699" },
    janssen: { vp: "J07BX03", mp: "EU/1/20/1525", ma: "ORG-100001417" },
    nuvaxovid: { vp: "1119305005", mp: "EU/1/21/1618", ma: "ORG-100032020" },
    covishield: { vp: "J07BX03", mp: "Covishield", ma: "ORG-100001981" },
    coronavac: { vp: "J07BX03", mp: "CoronaVac", ma: "Sinovac-Biotech" },
    sputnik: { vp: "J07BX03", mp: "Sputnik-V", ma: "Gamaleya-Research-Institute" },
    unlisted: { vp: "J07BX03", mp: "EU/9/99/9999", ma: "ORG-999999999" },
};

const ISSUERS = {
    NL: ["Ministry of Health Welfare and Sport", "URN:UVCI:01:NL:187/", "37512422923"],
    DE: ["Robert Koch-Institut", "URN:UVCI:01DE/IZ12345A/", "5CWLU12RNOB9RXSEOP6FG8#W"],
    AT: ["Ministry of Health, Austria", "URN:UVCI:01:AT:10807843F94AEE0EE5093FBC254BD813", "#B"],
    IT: ["Ministero della Salute", "URN:UVCI:01:IT:", "8F8A2E1C6F9D4B2A9C1E7D3B5A6F8E2C#4"],
    FR: ["CNAM", "URN:UVCI:01:FR:", "W7V2BE46QSBJ#L"],
    BE: ["Sciensano", "URN:UVCI:01:BE:", "MHRF8TE56C2MO0Y3YZ2V5J4P#7"],
    ES: ["Ministerio de Sanidad", "01:ES:", "3D1B5D5BC8D34D8E93E1C3A6D7C1B9E2#0"],
    PL: ["Centrum e-Zdrowia", "URN:UVCI:01:PL:1/", "AF2AA5873FAF45DFA826B8A01237BDC4"],
    CN: ["Tongxing test authority", "URN:UVCI:01:CN:", "DADFCC47C7334E45A906DB12FD859FB7#1"],
};

const PEOPLE = [
    ["Musterfrau-Gößinger", "MUSTERFRAU<GOESSINGER", "Gabriele", "GABRIELE", "1998-02-26"],
    ["Wang", "WANG", "Xiaoming", "XIAOMING", "1985-04-12"],
    ["de Vries", "DE<VRIES", "Sanne", "SANNE", "1979"],
    ["Rossi", "ROSSI", "Giulia", "GIULIA", "2006-11-03"],
    ["Dupont", "DUPONT", "Lucas", "LUCAS", "2011-06-15"],
    ["García López", "GARCIA<LOPEZ", "María", "MARIA", "1962-09"],
    ["Kowalski", "KOWALSKI", "Jan", "JAN", "1990-01-31"],
    ["Peeters", "PEETERS", "Lotte", "LOTTE", "2013-03"],
    ["Chen", "CHEN", "Li", "LI", "1970-12-01"],
    ["Huber", "HUBER", "Anna", "ANNA", "2005-07-20"],
];

const CLOCKS = [
    "2022-03-15T10:00:00Z",
    "2021-11-18T20:00:00+08:00",
    "2022-08-01T06:30:00+02:00",
    "2022-01-10T23:59:59.999+01:00",
];

let serial = 0;
const ci = (country) => {
    const [, prefix, suffix] = ISSUERS[country];
    serial += 1;
    return `${prefix}${suffix.replace(/[0-9A-F]{2}/, String(serial % 100).padStart(2, "0"))}`;
};

const document = (person, event, clock, country, extra = {}) => {
    const [fn, fnt, gn, gnt, dob] = PEOPLE[person % PEOPLE.length];
    const payload = { ver: extra.ver || "1.3.0", nam: { fn, fnt, gn, gnt }, dob: extra.dob ?? dob, ...event };
    return {
        payload,
        external: {
            validationClock: CLOCKS[clock % CLOCKS.length],
            valueSetProtocolVersion: "1.0",
            valueSets: VALUE_SETS,
            countryCode: extra.countryCode || "DE",
            issuerCountryCode: country,
            exp: "2023-03-01T00:00:00Z",
            iat: "2021-09-01T10:00:00Z",
        },
    };
};

const vaccination = (vaccine, dn, sd, dt, country, extra = {}) => ({
    tg: extra.tg || "840539006",
    ...VACCINES[vaccine],
    dn,
    sd,
    dt,
    co: extra.co || country,
    is: ISSUERS[country][0],
    ci: extra.ci || ci(country),
});

const test = (tt, sc, tr, country, extra = {}) => ({
    tg: "840539006",
    tt,
    ...(tt === NAA ? { nm: "Roche LightCycler qPCR" } : { ma: extra.ma || "1232" }),
    sc,
    tr,
    tc: extra.tc || "Testzentrum Köln Hbf",
    co: country,
    is: ISSUERS[country][0],
    ci: extra.ci || ci(country),
});

const recovery = (fr, df, du, country, extra = {}) => ({
    tg: "840539006",
    fr,
    co: extra.co || country,
    is: ISSUERS[country][0],
    df,
    du,
    ci: extra.ci || ci(country),
});

const data = [];
const add = (person, event, clock, country, extra) =>
    data.push(document(person, event, clock, country, extra));

// Vaccinations (clock 0 = 2022-03-15, 1 = 2021-11-18, 2 = 2022-08-01, 3 = 2022-01-10).
add(0, { v: [vaccination("comirnaty", 2, 2, "2021-06-11", "AT")] }, 0, "AT");
add(1, { v: [vaccination("comirnaty", 3, 3, "2021-12-20", "NL")] }, 0, "NL");
add(2, { v: [vaccination("spikevax", 2, 2, "2021-09-01", "NL")] }, 1, "NL");
add(3, { v: [vaccination("vaxzevria", 1, 2, "2021-05-02", "IT")] }, 1, "IT");
add(4, { v: [vaccination("comirnaty", 2, 2, "2022-02-28", "FR")] }, 0, "FR");
add(5, { v: [vaccination("janssen", 1, 1, "2021-11-01", "ES")] }, 1, "ES");
add(6, { v: [vaccination("janssen", 1, 1, "2021-10-01", "PL")] }, 1, "PL");
add(7, { v: [vaccination("janssen", 2, 1, "2022-01-03", "BE")] }, 0, "BE");
add(8, { v: [vaccination("covishield", 2, 2, "2021-08-14", "DE")] }, 1, "DE");
add(9, { v: [vaccination("coronavac", 2, 2, "2021-07-20", "IT")] }, 3, "IT");
add(0, { v: [vaccination("sputnik", 2, 2, "2021-10-10", "AT")] }, 3, "AT");
add(1, { v: [vaccination("nuvaxovid", 2, 2, "2022-03-10", "DE")] }, 0, "DE");
add(2, { v: [vaccination("unlisted", 2, 2, "2021-08-01", "NL")] }, 1, "NL");
add(3, { v: [vaccination("comirnaty", 2, 2, "2021-11-20", "IT")] }, 2, "IT");
add(4, { v: [vaccination("comirnaty", 2, 2, "2022-01-20", "FR")] }, 2, "FR");
add(5, { v: [vaccination("spikevax", 3, 2, "2022-01-05", "ES")] }, 2, "ES");
add(6, {
    v: [
        vaccination("comirnaty", 1, 2, "2021-05-01", "PL"),
        vaccination("comirnaty", 2, 2, "2021-06-01", "PL"),
    ],
}, 1, "PL");
add(7, {
    v: [
        vaccination("spikevax", 2, 2, "2021-09-01", "BE"),
        vaccination("sputnik", 3, 3, "2022-01-01", "BE"),
    ],
}, 0, "BE");
add(8, { v: [vaccination("comirnaty", 2, 2, "2022-04-01", "DE")] }, 0, "DE");
add(9, { v: [vaccination("comirnaty", 2, 2, "2020-11-30", "AT")] }, 0, "AT");
add(0, { v: [vaccination("vaxzevria", 2, 2, "2021-07-01", "DE", { tg: "840539007" })] }, 3, "DE");
add(1, { v: [vaccination("comirnaty", 4, 4, "2022-06-30", "CN")] }, 2, "CN");
add(2, { v: [vaccination("comirnaty", 2, 2, "2021-09-15", "FR", { ci: "URN:UVCI:01:FR:MINSANTE-PRV-2/0042" })] }, 3, "FR");
add(3, { v: [vaccination("spikevax", 2, 2, "2021-07-05", "IT", { co: "XX" })] }, 1, "IT");
add(4, { v: [vaccination("comirnaty", 2, 2, "2021-12-01", "DE", { ci: "URN:UVCI:02:DE:ABC/123" })] }, 0, "DE");
add(5, { v: [vaccination("comirnaty", 1, 1, "2021-06-30", "ES")] }, 3, "ES", { dob: "" });

// Tests.
add(1, { t: [test(NAA, "2021-11-17T09:20:00+08:00", NOT_DETECTED, "CN")] }, 1, "CN");
add(2, { t: [test(NAA, "2021-11-15T09:20:00+08:00", NOT_DETECTED, "NL")] }, 1, "NL");
add(3, { t: [test(RAT, "2022-03-14T12:00:00Z", NOT_DETECTED, "IT", { ma: "1232" })] }, 0, "IT");
add(4, { t: [test(RAT, "2022-03-13T08:00:00Z", NOT_DETECTED, "FR", { ma: "1304" })] }, 0, "FR");
add(5, { t: [test(RAT, "2022-03-14T12:00:00Z", NOT_DETECTED, "ES", { ma: "9999" })] }, 0, "ES");
add(6, { t: [test(NAA, "2022-07-30T07:00:00.123+02:00", NOT_DETECTED, "PL")] }, 2, "PL");
add(7, { t: [test(NAA, "2022-07-29T06:30:00+0200", NOT_DETECTED, "BE")] }, 2, "BE");
add(8, { t: [test(NAA, "2022-07-29T06:30:01+02", NOT_DETECTED, "DE")] }, 2, "DE");
add(9, { t: [test(RAT, "2022-01-09T18:00:00", NOT_DETECTED, "AT", { ma: "1363" })] }, 3, "AT");
add(0, { t: [test(RAT, "2022-01-11T08:00:00+01:00", NOT_DETECTED, "AT", { ma: "1363" })] }, 3, "AT");
add(1, { t: [test(NAA, "2021-11-18T08:00:00+08:00", "260373001", "CN")] }, 1, "CN");
add(2, { t: [test(RAT, "2022-03-15T09:00:00Z", "260373001", "NL", { ma: "2010" })] }, 0, "NL");
add(3, { t: [test("LP00000-0", "2022-03-15T09:00:00Z", NOT_DETECTED, "IT")] }, 0, "IT");
add(4, {
    t: [
        test(NAA, "2022-03-14T09:00:00Z", NOT_DETECTED, "FR"),
        test(RAT, "2022-03-15T07:00:00Z", "260373001", "FR"),
    ],
}, 0, "FR");
add(5, { t: [test(NAA, "2022-03-12T10:00:01Z", NOT_DETECTED, "ES", { ci: "URN:UVCI:01:ES:CNAM-X99/77" })] }, 0, "ES");
add(6, { t: [test(RAT, "2021-11-16T20:00:00.5+08:00", NOT_DETECTED, "CN", { ma: "2098" })] }, 1, "CN");

// Recoveries.
add(7, { r: [recovery("2022-01-20", "2022-01-31", "2022-07-19", "BE")] }, 0, "BE");
add(8, { r: [recovery("2021-06-01", "2021-06-12", "2021-11-28", "DE")] }, 1, "DE");
add(9, { r: [recovery("2022-03-08", "2022-03-19", "2022-09-04", "AT")] }, 0, "AT");
add(4, { r: [recovery("2021-09-01", "2021-09-12", "2022-02-28", "FR")] }, 1, "FR");
add(7, { r: [recovery("2021-08-10", "2021-08-21", "2022-02-06", "BE")] }, 3, "BE");
add(3, { r: [recovery("2022-05-02", "2022-05-13", "2022-10-29", "IT")] }, 2, "IT");
add(0, { r: [recovery("2021-12-24", "2022-01-04", "2022-06-22", "AT", { co: "AT" })] }, 0, "AT");
add(8, {
    r: [
        recovery("2022-01-02", "2022-01-13", "2022-07-01", "DE"),
        recovery("2021-04-02", "2021-04-13", "2021-09-29", "DE"),
    ],
}, 0, "DE");
add(5, { r: [recovery("2022-02-20", "2022-03-03", "2022-08-19", "ES")] }, 0, "ES", { dob: "2022-12" });

// Malformed or mixed: no event at all, a vaccination and a test together.
add(1, {}, 0, "DE");
add(3, { v: [vaccination("comirnaty", 2, 2, "2021-10-01", "IT")] }, 0, "IT", { ver: "1.4.0" });
add(2, {
    v: [vaccination("comirnaty", 2, 2, "2021-06-01", "NL")],
    t: [test(RAT, "2022-03-14T12:00:00Z", NOT_DETECTED, "NL")],
}, 0, "NL");

const out = (name, text) => fs.writeFileSync(path.join(__dirname, name), text);
out("rules.json", JSON.stringify(rules, null, 2) + "\n");
// One document a line: each carries the full value sets, as a verifier's external data does.
out("data.json", "[\n" + data.map((d) => JSON.stringify(d)).join(",\n") + "\n]\n");
console.log(`${rules.length} rules, ${data.length} data documents`);
