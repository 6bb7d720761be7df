//! The one rule for times that leave the system: RFC 3339 with the display zone's offset,
//! `2021-11-17T08:30:00+08:00` (Asia/Shanghai, UTC+8, no daylight saving). Times are stored as
//! UTC; every answer, message and printed line shows them through here.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::shanghai;

/// `2021-11-17T08:30:00+08:00` (milliseconds only when there are any).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&shanghai());
    let format = if t.timestamp_subsec_millis() == 0 { SecondsFormat::Secs } else { SecondsFormat::Millis };
    local.to_rfc3339_opts(format, false)
}

/// For `#[serde(serialize_with = "tongxing_domain::time::serialize")]` on a `DateTime<Utc>`.
pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

/// For `#[serde(serialize_with = "tongxing_domain::time::serialize_opt")]` on an
/// `Option<DateTime<Utc>>`.
pub fn serialize_opt<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn shown_in_beijing_time() {
        let t = Utc.with_ymd_and_hms(2021, 11, 17, 0, 30, 0).unwrap();
        assert_eq!(rfc3339(t), "2021-11-17T08:30:00+08:00");
        let t = t + chrono::Duration::milliseconds(250);
        assert_eq!(rfc3339(t), "2021-11-17T08:30:00.250+08:00");
        let json = serde_json::to_string(&Wrapper { t, none: None }).unwrap();
        assert_eq!(json, r#"{"t":"2021-11-17T08:30:00.250+08:00","none":null}"#);
    }

    #[derive(serde::Serialize)]
    struct Wrapper {
        #[serde(serialize_with = "serialize")]
        t: DateTime<Utc>,
        #[serde(serialize_with = "serialize_opt")]
        none: Option<DateTime<Utc>>,
    }
}
