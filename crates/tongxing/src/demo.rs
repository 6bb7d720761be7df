//! `serve --demo`: a generated, realistic population for trying the API at once — commuters
//! from the three counties north-east of Beijing (北三县) and Tianjin, visitors, the 13
//! expressway test points, checkpoints on each expressway, and tests of every kind; and three
//! people with fixed document numbers whose checks README.md shows ([`SHOWCASE`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use chrono::{Duration, Timelike, Utc};
use tongxing_domain::Policy;
use tongxing_domain::facts::{CodeColour, CommuterKind, CommuterStatus, SiteKind, TestResult};
use tongxing_domain::ids::{Document, DocumentKind, RegionCode, id_check_char};
use tongxing_store::{Checkpoint, CommuterApplication, PersonInput, SampleInput, Store};

/// A small deterministic generator (xorshift64*): the demo is the same every time.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平", "刚", "桂英", "建华", "志强",
];
/// 北三县 (Sanhe, Dachang, Xianghe) carry 43% of commuters; the rest from Tianjin and other prefectures.
const COMMUTER_HOMES: &[&str] = &[
    "131082", "131082", "131028", "131024", "131082", "131024", "120113", "120114", "120104", "130684", "131002",
    "130705", "130821",
];
const CITY: &[&str] = &["110101", "110102", "110105", "110106", "110108", "110112", "110113", "110114", "110115"];
const ELSEWHERE: &[&str] = &["130102", "140105", "370102", "310104", "440106", "210102", "410105", "110105", "110108"];

/// The people README.md's examples check at CP-JINGHA, with what the check answers (on the day the
/// demo is filled: their tests are dated from that moment). Born in 1949, before any generated
/// person, so that the numbers are never drawn for someone else.
pub const SHOWCASE: [(&str, &str); 3] = [
    ("131082194910010017", "pass: an approved commuter from 三河, negative test 5 days ago"),
    (
        "120104194905040020",
        "conditional: sampled 2 hours ago at the 京哈高速 test point, result pending, commitment letter signed there",
    ),
    ("11010519491231002X", "deny: negative test 3 days ago, older than 48 hours"),
];

/// Writes the [`SHOWCASE`] people and their tests.
async fn showcase(store: &Store, policy: &Policy, now: chrono::DateTime<Utc>) -> Result<Vec<String>> {
    let now = now.with_nanosecond(0).unwrap_or(now);
    let today = now.with_timezone(&tongxing_domain::shanghai()).date_naive();
    let person = |number: &str, name: &str, region: &str| -> Result<PersonInput> {
        Ok(PersonInput {
            document: Document::parse(DocumentKind::ResidentId, number, today)?,
            name: Some(name.into()),
            phone: None,
            residence_region: RegionCode::parse(region).ok(),
        })
    };
    let commuter = person(SHOWCASE[0].0, "王建华", "131082")?;
    let pending = person(SHOWCASE[1].0, "李娜", "120104")?;
    let too_old = person(SHOWCASE[2].0, "张伟", "110105")?;
    let application = CommuterApplication {
        kind: CommuterKind::Worker,
        residence_region: RegionCode::parse("131082")?,
        residence_proof: "household_register".into(),
        employer_name: "北京华通科技有限公司".into(),
        employer_uscc: "91350100M000100Y43".into(),
        work_region: RegionCode::parse("110105")?,
    };
    let valid_until = now + Duration::days(policy.commuter_validity_days);
    store.import_commuters(&[(commuter.clone(), application)], valid_until, "demo", now).await?;
    if let Some(rec) = store.person(&commuter.document.key()).await? {
        store.record_commuter_first_check(rec.id, now - Duration::days(3)).await?;
    }
    store.upsert_person(&pending, now).await?;
    store.upsert_person(&too_old, now).await?;
    let sample = |p: &PersonInput, id: &str, age: Duration, site: &str, site_kind, result| SampleInput {
        lab: "HB-LAB-003".into(),
        sample_id: id.into(),
        document: p.document.clone(),
        sampled_at: now - age,
        site: site.into(),
        site_kind,
        result,
    };
    let samples = [
        sample(&commuter, "DEMO-1", Duration::days(5), "H-SANHE", SiteKind::Hospital, TestResult::Negative),
        sample(&pending, "DEMO-2", Duration::hours(2), "SA-JINGHA-XIANGHE", SiteKind::ServiceArea, TestResult::Pending),
        sample(&too_old, "DEMO-3", Duration::days(3), "H-SANHE", SiteKind::Hospital, TestResult::Negative),
    ];
    store.submit_samples(&samples[..1], "demo", now).await?;
    store.submit_samples(&samples[2..], "demo", now).await?;
    // The pending sample was taken by the 京哈高速 test point (its id is the sample's lab), and the
    // person signed the commitment letter on the test point's device.
    let at_test_point = SampleInput { lab: "SA-JINGHA-XIANGHE".into(), ..samples[1].clone() };
    store.register_sample(&at_test_point, None, "demo", now).await?;
    let letter = tongxing_app::commitment::LetterView::of(tongxing_domain::letter::Letter::current());
    store
        .sign_commitment(&tongxing_store::NewCommitment {
            doc_key: &pending.document.key(),
            lab: "SA-JINGHA-XIANGHE",
            sample_id: "DEMO-2",
            letter_version: &letter.version,
            letter_sha256: &letter.sha256,
            signed_at: now - Duration::hours(2),
            place: "SA-JINGHA-XIANGHE",
            signed_via: "test_point_device",
            signed_by: "demo",
            deadline: now - Duration::hours(2) + policy.result_deadline(),
        })
        .await?
        .map_err(|e| anyhow::anyhow!("the demo's commitment letter: {e:?}"))?;
    Ok(samples
        .iter()
        .zip(SHOWCASE)
        .map(|(s, (number, what))| {
            format!("  {number}  {what} (sampled {})", tongxing_domain::time::rfc3339(s.sampled_at))
        })
        .collect())
}

/// A valid resident ID number born in `region`, unique by `serial`.
pub fn id_number(rng: &mut Rng, region: &str, serial: u64) -> String {
    let year = 1950 + rng.below(55);
    let month = 1 + rng.below(12);
    let day = 1 + rng.below(28);
    let first17 = format!("{region}{year:04}{month:02}{day:02}{:03}", serial % 1000);
    format!("{first17}{}", id_check_char(first17.as_bytes()))
}

fn name(rng: &mut Rng) -> String {
    format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN))
}

/// Writes the demo data if the database has no people yet; prints and saves one token per role.
pub async fn fill_if_empty(store: &Store, policy: &Policy, database: &str) -> Result<()> {
    if store.counts().await?.people > 0 {
        tracing::info!("database not empty: demo data not generated");
        return Ok(());
    }
    let now = Utc::now();
    let mut rng = Rng::new(20211117);
    let today = now.with_timezone(&tongxing_domain::shanghai()).date_naive();

    // Checkpoints: one on each expressway with a test point, the Tantai checkpoint, villages.
    let mut checkpoints = Vec::new();
    for tp in &policy.designated_test_points {
        let short = tp.id.trim_start_matches("SA-").split('-').next().unwrap_or("X").to_string();
        checkpoints.push(Checkpoint {
            id: format!("CP-{short}"),
            name: format!("{}进京检查站", tp.road),
            road: Some(tp.road.clone()),
            kind: "police".into(),
        });
    }
    checkpoints.push(Checkpoint {
        id: "CP-TANTAI".into(),
        name: "潮白河檀台检查站".into(),
        road: Some("京哈高速".into()),
        kind: "police".into(),
    });
    for (i, v) in ["燕郊", "白庙", "大厂", "香河", "武清"].iter().enumerate() {
        checkpoints.push(Checkpoint {
            id: format!("VC-{:02}", i + 1),
            name: format!("{v}村卡口"),
            road: None,
            kind: "village".into(),
        });
    }
    for c in &checkpoints {
        store.upsert_checkpoint(c, now).await?;
    }

    let labs = ["BJ-LAB-001", "BJ-LAB-017", "HB-LAB-003", "TJ-LAB-008"];
    let hospitals = ["H-CHAOYANG", "H-TONGZHOU", "H-SANHE", "H-XIANGHE"];
    let communities = ["C-YANJIAO-01", "C-YANJIAO-02", "C-DACHANG-01", "C-WUQING-01"];
    let mut samples = Vec::new();
    let mut serial = 0u64;
    let people = 5000u64;
    let mut commuters = Vec::new();
    let mut codes = Vec::new();
    for i in 0..people {
        serial += 1;
        let is_commuter = i < 1500;
        let home = if is_commuter { *rng.pick(COMMUTER_HOMES) } else { *rng.pick(ELSEWHERE) };
        let number = id_number(&mut rng, home, serial);
        let document = Document::parse(DocumentKind::ResidentId, &number, today)?;
        let person = PersonInput {
            document: document.clone(),
            name: Some(name(&mut rng)),
            phone: Some(format!("13{:09}", rng.below(1_000_000_000))),
            residence_region: RegionCode::parse(home).ok(),
        };
        // Samples: commuters test every week or two, visitors now and then.
        let n = if is_commuter { 1 + rng.below(3) } else { rng.below(3) };
        for k in 0..n {
            let age_hours = if is_commuter { rng.below(20 * 24) } else { rng.below(5 * 24) };
            let sampled_at = now - Duration::hours(age_hours as i64) - Duration::minutes(rng.below(60) as i64);
            let (site, kind) = match rng.below(10) {
                0..=3 => (rng.pick(&hospitals).to_string(), SiteKind::Hospital),
                4..=7 => (rng.pick(&communities).to_string(), SiteKind::Community),
                _ => (rng.pick(&policy.designated_test_points).id.clone(), SiteKind::ServiceArea),
            };
            let result = if age_hours < 12 && rng.chance(40) {
                TestResult::Pending
            } else if rng.chance(1) {
                TestResult::Invalid
            } else if i % 1000 == 999 && k == 0 {
                TestResult::Positive
            } else {
                TestResult::Negative
            };
            samples.push(SampleInput {
                lab: rng.pick(&labs).to_string(),
                sample_id: format!("S{:08}{k}", serial),
                document: document.clone(),
                sampled_at,
                site,
                site_kind: kind,
                result,
            });
        }
        if is_commuter {
            let uscc =
                tongxing_domain::uscc::complete(&format!("9111010{}MA0{:07}", rng.below(10), rng.below(10_000_000)))
                    .unwrap_or_else(|| "91350100M000100Y43".into());
            let kind = match rng.below(20) {
                0 => CommuterKind::Student,
                1 => CommuterKind::EscortingParent,
                _ => CommuterKind::Worker,
            };
            let app = CommuterApplication {
                kind,
                residence_region: RegionCode::parse(home)?,
                residence_proof: rng
                    .pick(&["household_register", "property_deed", "lease", "residents_committee_letter"])
                    .to_string(),
                employer_name: format!("北京{}科技有限公司", rng.pick(&["星河", "远航", "华通", "京东方", "启明"])),
                employer_uscc: uscc,
                work_region: RegionCode::parse(rng.pick::<&str>(CITY))?,
            };
            commuters.push((person, app));
        } else {
            store.upsert_person(&person, now).await?;
            if rng.chance(3) {
                codes.push((document, if rng.chance(20) { CodeColour::Red } else { CodeColour::Yellow }));
            }
        }
    }
    // Commuters: most approved (the database built from past entries), a few in review.
    let valid_until = now + Duration::days(policy.commuter_validity_days);
    let (approved, rest) = commuters.split_at(1400);
    store.import_commuters(approved, valid_until, "demo", now).await?;
    for (p, a) in rest {
        store.apply_commuter(p, a, "demo", now).await?;
    }
    // Some approved commuters have had their first check already.
    for (_, (p, _)) in approved.iter().enumerate().filter(|(k, _)| k % 3 != 0) {
        if let Some(rec) = store.person(&p.document.key()).await? {
            store.record_commuter_first_check(rec.id, now - Duration::days(3)).await?;
        }
    }
    if let Some((p, _)) = approved.get(5)
        && let Some(rec) = store.person(&p.document.key()).await?
    {
        store
            .change_commuter(
                rec.id,
                CommuterStatus::Suspended,
                Some("employer certificate under review"),
                None,
                "demo",
                now,
            )
            .await?;
    }
    for chunk in samples.chunks(5000) {
        store.submit_samples(chunk, "demo", now).await?;
    }
    let popups = ["14天内到过有本土病例的县（市、区、旗）", "与病例或风险区域时空关联", "未按要求完成核酸检测"];
    for (d, colour) in codes {
        let rec = store.person(&d.key()).await?.expect("just registered");
        let reason =
            if colour == CodeColour::Red { "密切接触者".to_string() } else { rng.pick(&popups).to_string() };
        store.set_code(rec.id, colour, Some(&reason), None, "demo", now).await?;
    }

    let tried = showcase(store, policy, now).await?;

    // The demo shows the rules of 17 November 2021 (commuters, conditional entry), re-issued
    // from today; the later built-in policies would otherwise be the ones in force.
    let (_, original) = tongxing_rules::BUILTIN_FILES[0];
    let reissued = tongxing_rules::reissue(original, "2021-11-17-demo", now - Duration::minutes(1))?;
    let rs = tongxing_rules::RuleSet::from_json(&reissued)?;
    store.publish_policy(rs.id(), rs.version(), &reissued, "demo", now).await?;
    store.activate_policy(rs.id(), rs.version(), "demo", now).await?;

    // One token per role.
    let mut tokens = BTreeMap::new();
    for role in ["admin", "lab", "test_point", "officer", "registry", "health", "analyst"] {
        tokens.insert(role, crate::create_token(store, role, "", Some("demo")).await?);
    }
    let path = tokens_path(database);
    std::fs::write(&path, serde_json::to_string_pretty(&tokens)? + "\n")?;
    let c = store.counts().await?;
    println!(
        "demo data: {} people, {} samples, {} commuters, {} checkpoints",
        c.people, c.samples, c.commuters, c.checkpoints
    );
    println!("demo tokens (also in {}):", path.display());
    for (role, t) in &tokens {
        println!("  {role:<10} {t}");
    }
    println!("people to check at CP-JINGHA (README.md, \"Trying the API\"):");
    for line in tried {
        println!("{line}");
    }
    Ok(())
}

/// `demo-tokens.json` beside the SQLite file, or in the working directory for PostgreSQL.
pub fn tokens_path(database: &str) -> PathBuf {
    let file = database.strip_prefix("sqlite://").or_else(|| database.strip_prefix("sqlite:"));
    match file.map(|f| f.split('?').next().unwrap_or(f)) {
        Some(f) if !f.is_empty() && !f.starts_with(':') => {
            PathBuf::from(f).parent().map(|p| p.join("demo-tokens.json")).unwrap_or_else(|| "demo-tokens.json".into())
        }
        _ => PathBuf::from("demo-tokens.json"),
    }
}

/// The demo's pass keys: `tongxing-keys` beside the SQLite file, or in the working directory
/// for PostgreSQL.
pub fn keys_dir(database: &str) -> PathBuf {
    tokens_path(database).with_file_name("tongxing-keys")
}
