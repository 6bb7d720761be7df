//! The registry officer's page in a real browser: the queue with the evidence; approve, a
//! rejection refused without its reason (nothing changed), suspend; a bulk import whose preview
//! lists every bad row by its line before anything is written, then imports exactly what was
//! previewed. axe-core in both languages, no sideways scrolling. (SQLite: see web_citizen.rs.)

use serde_json::json;

use crate::browser::Browser;
use crate::helpers::*;
use crate::web::spawn_web;

fn apply(app: &App, doc: &str, name: &str) {
    let r = app.post(
        "registry",
        "/api/v1/commuters",
        json!({"document_number": doc, "name": name,
        "kind": "worker", "residence_region": "131082", "residence_proof": "lease",
        "employer_name": "北京某某科技有限公司", "employer_uscc": "91350100M000100Y43", "work_region": "110105"}),
    );
    assert_eq!(r.status, 201, "{r:?}");
}

fn status(app: &App, doc: &str) -> String {
    let r = app.post("registry", "/api/v1/people/lookup", json!({"document_number": doc, "purpose": "test"}));
    r.body["commuter"]["status"].as_str().unwrap_or("none").to_string()
}

#[test]
fn the_queue_with_its_evidence_and_the_decisions() {
    let (app, _) = spawn_web(Backend::Sqlite);
    let (a, r) = (nth_id("131082", 51), nth_id("131082", 52));
    apply(&app, &a, "钱一");
    apply(&app, &r, "钱二");
    let mut b = Browser::start("registry-queue", &app.server.base);
    b.staff_sign_in(&app.tokens["registry"]);
    b.step("the queue: masked, with the evidence", |b| {
        assert_eq!(b.path(), "/registry");
        let text = b.text("main");
        assert!(text.contains("钱*") && text.contains("租房合同") && text.contains("91350100M000100Y43"), "{text}");
        assert!(text.contains("131082 三河市") && !text.contains(&a), "{text}");
    });
    b.check_page("/registry");
    b.step("approve the first", |b| {
        b.goto("/registry");
        b.click("section.application:nth-of-type(1) button[value=approve]");
        b.wait_text("[role=status]", "已批准");
    });
    b.step("a rejection without its reason is refused", |b| {
        b.click("section.application button[value=reject]");
        b.wait_text("main", "reason");
        assert!(b.text("h1").contains("未做任何更改"));
    });
    let statuses: Vec<String> = [&a, &r].iter().map(|d| status(&app, d)).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "approved").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "pending").count(), 1, "nothing changed by the refusal: {statuses:?}");
    b.step("reject with a reason", |b| {
        b.goto("/registry");
        b.fill("section.application input[name=reason]", "居住证明已过期");
        b.click("section.application button[value=reject]");
        b.wait_text("[role=status]", "已驳回");
        assert!(b.text("main").contains("没有此状态的申请"), "the queue is empty");
    });
    b.step("suspend the approved one, with a reason", |b| {
        b.goto("/registry?status=approved");
        b.fill("section.application input[name=reason]", "单位核查");
        b.click("section.application button[value=suspend]");
        b.wait_text("[role=status]", "已暂停");
    });
    let mut statuses: Vec<String> = [&a, &r].iter().map(|d| status(&app, d)).collect();
    statuses.sort();
    assert_eq!(statuses, ["rejected", "suspended"]);
    b.check_page("/registry?status=suspended");
}

#[test]
fn the_import_shows_every_bad_row_before_writing_anything() {
    let (app, _) = spawn_web(Backend::Sqlite);
    let good1 = nth_id("131082", 53);
    let good2 = nth_id("131082", 54);
    let header = "document_kind,document_number,name,phone,kind,residence_region,residence_proof,employer_name,employer_uscc,work_region";
    let csv = format!(
        "{header}\n\
         resident_id,{good1},孙一,13812345653,worker,131082,lease,北京某某科技有限公司,91350100M000100Y43,110105\n\
         resident_id,110105198501010000,孙二,,worker,131082,lease,北京某某科技有限公司,91350100M000100Y43,110105\n\
         resident_id,{good2},孙三,,student,131082,property_deed,北京某某中学,91350100M000100Y43,110105\n\
         resident_id,{},孙四,,worker,110105,lease,北京某某科技有限公司,91350100M000100Y43,110105\n",
        nth_id("131082", 55)
    );
    let approved =
        |app: &App| app.get("registry", "/api/v1/commuters/queue?status=approved").body.as_array().unwrap().len();
    let mut b = Browser::start("registry-import", &app.server.base);
    b.staff_sign_in(&app.tokens["registry"]);
    b.check_page("/registry/import");
    b.step("paste and check", |b| {
        b.goto("/registry/import");
        b.js(&format!("document.getElementById('csv').value = {};", serde_json::to_string(&csv).unwrap()));
        b.click("form[action='/registry/import/preview'] button");
        b.find("#preview");
        let lines: Vec<String> = (0..2)
            .map(|i| {
                b.js(&format!("return document.querySelectorAll('#bad-rows tr[data-line]')[{i}].dataset.line;"))
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(lines, ["3", "5"], "every bad row, by its line");
        let text = b.text("#bad-rows");
        assert!(text.contains("document_number") && text.contains("residence_region"), "{text}");
        assert!(b.text("#preview").contains("可导入 2"), "{}", b.text("#preview"));
        b.axe();
        b.no_horizontal_scroll();
    });
    assert_eq!(approved(&app), 0, "nothing written by the preview");
    b.step("a text changed after the preview is not imported", |b| {
        b.js("document.querySelector('form[action=\"/registry/import\"] textarea').value += 'x';");
        b.click("#do-import");
        b.wait_text("main", "csv");
    });
    assert_eq!(approved(&app), 0);
    b.step("import what was previewed", |b| {
        b.goto("/registry/import");
        b.js(&format!("document.getElementById('csv').value = {};", serde_json::to_string(&csv).unwrap()));
        b.click("form[action='/registry/import/preview'] button");
        b.click("#do-import");
        let out = b.wait_text("#import-outcome", "新导入 2");
        assert!(out.contains("未导入 2"), "{out}");
    });
    assert_eq!(approved(&app), 2);
}
