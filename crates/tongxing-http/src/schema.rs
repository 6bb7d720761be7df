//! OpenAPI schemas of the strings requests carry, made from the same rules the domain parses
//! them by ([`tongxing_domain::text`], identifiers): a field declared
//! `#[schema(value_type = schema::CheckpointId)]` shows the limit and the pattern the server
//! enforces, so the document cannot drift from the code.

use std::borrow::Cow;

use tongxing_domain::text::{self, Spec};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};

fn string(description: &str, spec: Spec, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(spec.min))
        .max_length(Some(spec.max))
        .pattern(Some(spec.pattern()))
        .examples([serde_json::Value::String(example.into())])
}

/// Declares a string schema named after a type.
macro_rules! string_schema {
    ($($name:ident => $body:expr;)+) => {$(
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let object: Object = $body.build();
                RefOr::T(Schema::Object(object))
            }
        }
        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )+};
}

/// A spec of the domain's text types, with its description and an example.
macro_rules! text_schemas {
    ($($name:ident, $example:literal, $description:literal;)+) => {
        string_schema! { $($name => string($description, text::$name::SPEC, $example);)+ }
    };
}

text_schemas! {
    CheckpointId, "CP-JINGHA", "A checkpoint's id: letters, digits, '-' and '_'.";
    LabCode, "BJ-LAB-017", "A lab's or test point's code: letters, digits, '-', '_', '.' and '/'.";
    SampleId, "S20211117000123", "The lab's own sample id (the tube's bar code): letters, digits, '-', '_', '.' and '/'.";
    SiteCode, "SA-JINGHA-XIANGHE", "A sampling site's code; designated service-area test points use the policy's ids.";
    PolicyId, "beijing-2021-11-17", "A rule set's id: letters, digits, '-', '_', '.' and '/'.";
    PolicyVersion, "2021-11-17", "A rule set's version: letters, digits, '-', '_', '.' and '/'.";
    Plate, "冀R12345", "A vehicle plate: Latin letters, digits, Chinese characters, '·' and '-'.";
    PersonName, "张三", "A name as on the document; no control characters.";
    PlaceName, "京哈高速香河检查站", "A place's name; no control characters.";
    Road, "京哈高速", "A road, which names the nearest service-area test point in messages.";
    EmployerName, "北京某某科技有限公司", "An employer's or school's name; no control characters.";
    Reason, "commuter review 2021-11-20", "Free text, kept in the record; no control characters.";
}

string_schema! {
    DocumentNumber => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("The number as printed on the document: a resident ID number (18 characters, GB 11643, \
            check character verified), a passport (5 to 17 letters and digits), a Hong Kong/Macao permit (H or M \
            and 8 or 10 digits) or a Taiwan permit (8 or 10 digits)."))
        .min_length(Some(5))
        .max_length(Some(18))
        .pattern(Some("^[0-9A-Za-z]{5,18}$"))
        .examples([serde_json::Value::String("11010519491231002X".into())]);
    RegionCode => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A county-level GB/T 2260 division code in use today."))
        .min_length(Some(6))
        .max_length(Some(6))
        .pattern(Some("^[0-9]{6}$"))
        .examples([serde_json::Value::String("131082".into())]);
    Phone => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A mainland mobile number: 11 digits starting with 1."))
        .min_length(Some(11))
        .max_length(Some(11))
        .pattern(Some("^1[0-9]{10}$"))
        .examples([serde_json::Value::String("13812345678".into())]);
    Uscc => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A unified social credit code (GB 32100-2015), check character verified."))
        .min_length(Some(18))
        .max_length(Some(18))
        .pattern(Some("^[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{18}$"))
        .examples([serde_json::Value::String("91350100M000100Y43".into())]);
    Frame => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("A camera frame showing a pass's QR code: PNG or JPEG, as base64 or a \
            data:image/jpeg;base64,… URL (what a canvas's toDataURL gives); at most 2 MiB and 2.5 megapixels. A frame \
            in which no code can be read is a 422 naming `image`, its detail starting with the stage (bad_image, \
            too_large): send the next frame."))
        .min_length(Some(1))
        .max_length(Some(tongxing_app::frame::MAX_FRAME_FIELD))
        .examples([serde_json::Value::String("data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ…".into())]);
    Timestamp => ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
        .description(Some("RFC 3339 with an offset; answers use Beijing time, e.g. 2021-11-17T08:30:00+08:00."))
        .max_length(Some(40))
        .examples([serde_json::Value::String("2021-11-17T08:30:00+08:00".into())]);
}

/// A string that is one of `values`.
fn one_of(description: &str, values: impl IntoIterator<Item = &'static str>) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).enum_values(Some(values))
}

fn names<T: Copy>(all: &'static [T], name: fn(T) -> &'static str) -> impl Iterator<Item = &'static str> {
    all.iter().map(move |v| name(*v))
}

string_schema! {
    DocumentKind => one_of("The kind of document (default resident_id).",
        ["resident_id", "passport", "hk_macao_permit", "taiwan_permit"]);
    CodeColour => one_of("A health-code colour.",
        names(tongxing_domain::CodeColour::ALL, tongxing_domain::CodeColour::as_str));
    TestResult => one_of("A sample's result.",
        names(tongxing_domain::TestResult::ALL, tongxing_domain::TestResult::as_str));
    SiteKind => one_of("The kind of sampling site.",
        names(tongxing_domain::SiteKind::ALL, tongxing_domain::SiteKind::as_str));
    CommuterKind => one_of("Why the person crosses every day.",
        names(tongxing_domain::facts::CommuterKind::ALL, tongxing_domain::facts::CommuterKind::as_str));
    ResidenceProof => one_of("The proof of residence shown.", crate::routes::commuters::RESIDENCE_PROOFS.iter().copied());
    CommuterAction => one_of("The registry officer's decision.", crate::routes::commuters::ACTIONS.iter().copied());
    CheckpointKind => one_of("The kind of checkpoint.", crate::routes::checkpoints::KINDS.iter().copied());
    Popup => one_of("A pop-up (弹窗) reason of the health code.", crate::routes::people::POPUPS.iter().map(|(k, _)| *k));
}
