//! CloudWatch metrics as embedded metric format (EMF): one JSON line on stdout per flush, which
//! Lambda's log pipeline turns into metrics without an API call or an agent. Namespace
//! `intake`, dimension `function` (the Lambda function name).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

pub const NAMESPACE: &str = "intake";

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Metric values gathered during one invocation, written together by [`Metrics::flush`].
#[derive(Debug, Default)]
pub struct Metrics {
    values: Vec<(&'static str, f64, Unit)>,
}

impl Metrics {
    pub fn add(&mut self, name: &'static str, value: f64, unit: Unit) {
        match self.values.iter_mut().find(|(n, ..)| *n == name) {
            Some((_, v, _)) => *v += value,
            None => self.values.push((name, value, unit)),
        }
    }

    pub fn count(&mut self, name: &'static str, n: u64) {
        self.add(name, n as f64, Unit::Count);
    }

    /// The EMF document for the metrics gathered so far that are not zero (`None` if none
    /// is). Zeros are left out: every EMF byte is billed as a log byte, and CloudWatch's sum of
    /// no data points is the same zero on a graph. Nothing alarms on intake's own metrics
    /// (the alarms watch AWS/Lambda, AWS/SQS and the load balancer, which report zeros).
    pub fn render(&self, function: &str, at_ms: u128) -> Option<String> {
        let written: Vec<_> = self.values.iter().filter(|(_, value, _)| *value != 0.0).collect();
        if written.is_empty() {
            return None;
        }
        let mut definitions = String::new();
        let mut values = String::new();
        for (i, (name, value, unit)) in written.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(definitions, r#"{sep}{{"Name":"{name}","Unit":"{}"}}"#, unit.as_str());
            let _ = write!(values, r#","{name}":{value}"#);
        }
        let function = function.replace(['"', '\\'], "");
        Some(format!(
            r#"{{"_aws":{{"Timestamp":{at_ms},"CloudWatchMetrics":[{{"Namespace":"{NAMESPACE}","Dimensions":[["function"]],"Metrics":[{definitions}]}}]}},"function":"{function}"{values}}}"#
        ))
    }

    /// Writes the metrics to stdout for CloudWatch and forgets them.
    pub fn flush(&mut self) {
        let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        if let Some(line) = self.render(&function, now) {
            println!("{line}");
        }
        self.values.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_emf_document_with_summed_values() {
        let mut m = Metrics::default();
        assert!(m.render("f", 1).is_none());
        m.count("DocumentsAccepted", 2);
        m.count("DocumentsAccepted", 1);
        m.add("BytesAccepted", 10.0, Unit::Bytes);
        m.count("DocumentsRejected", 0);
        let line = m.render("intake-dev-S3Function", 1_700_000_000_000).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["DocumentsAccepted"], 3.0);
        assert_eq!(v["function"], "intake-dev-S3Function");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "intake");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"], "Bytes");
        assert!(v.get("DocumentsRejected").is_none(), "zeros are not written: {line}");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len(),
            2
        );
        let mut zeros = Metrics::default();
        zeros.count("MessagesFailed", 0);
        assert!(zeros.render("f", 1).is_none(), "only zeros: no line");
    }
}
