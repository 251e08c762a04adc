//! The `expiry-sweep` function: a timer trigger. The host POSTs
//! `{"Data":{"timer":{"Schedule":…,"ScheduleStatus":{"Last":…,"Next":…},"IsPastDue":false}},
//! "Metadata":{…}}` at each scheduled time; the answer is the usual envelope, its `ReturnValue`
//! the sweep's summary and its `Logs` one line per vault. Then the day's health notice goes, if
//! something needs a person. The host does not retry a failed
//! timer run, so a failure is answered 500 only to show in the function's monitor: the next
//! run catches up.

use crate::dispatch::Dispatcher;
use crate::sweep::health::{self, Notice, SetAside};
use crate::sweep::{SweepReport, Sweeper};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The function's name: its folder in the function app, and the path the host POSTs to.
pub const FUNCTION_NAME: &str = "expiry-sweep";

/// The binding name in `expiry-sweep/function.json`.
const BINDING: &str = "timer";

/// The answer to the host.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimerResponse {
    /// No output bindings.
    pub outputs: Map<String, Value>,
    /// Lines for the invocation log.
    pub logs: Vec<String>,
    /// What the run did.
    pub return_value: TimerResult,
}

/// What one timer run did: the sweep's summary (its fields, when there are vaults to sweep)
/// and what became of the health notice.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimerResult {
    /// The sweep, when `VAULTS` or `SUBSCRIPTIONS` is set.
    #[serde(flatten)]
    pub sweep: Option<SweepReport>,
    /// `not needed`, `sent`, `sent before`, `failed` or `refused`.
    pub health_notice: &'static str,
}

#[derive(Deserialize)]
struct Invocation {
    #[serde(rename = "Data")]
    data: Map<String, Value>,
}

#[derive(Deserialize, Default)]
struct TimerInfo {
    #[serde(rename = "IsPastDue", default)]
    is_past_due: bool,
}

/// Why a request is not a timer invocation (answered 400).
#[derive(Debug, thiserror::Error)]
#[error(
    "not a timer invocation ({0}): expected {{\"Data\": {{\"timer\": {{\"ScheduleStatus\": …, \
     \"IsPastDue\": …}}}}, \"Metadata\": {{…}}}}"
)]
pub struct NotATimer(String);

/// Runs one sweep for a timer invocation; the flag says whether it failed.
pub async fn invoke(
    body: &[u8],
    dispatcher: &Dispatcher,
    sweeper: Option<&Sweeper>,
    set_aside: &SetAside,
) -> Result<(TimerResponse, bool), NotATimer> {
    let invocation: Invocation =
        serde_json::from_slice(body).map_err(|e| NotATimer(e.to_string()))?;
    let timer = invocation
        .data
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(BINDING))
        .map(|(_, timer)| timer)
        .ok_or_else(|| NotATimer("no Data.timer".to_owned()))?;
    // `ScheduleStatus` may be null and `Last` a date with no offset: nothing here needs them.
    let info: TimerInfo = serde_json::from_value(timer.clone()).unwrap_or_default();
    let mut logs = Vec::new();
    if info.is_past_due {
        logs.push("the timer is past due (the app was stopped or busy): sweeping now".to_owned());
    }
    let report = match sweeper {
        Some(sweeper) => {
            let report = sweeper.run(dispatcher, false).await;
            logs.extend(report.log_lines());
            Some(report)
        }
        None => {
            logs.push("neither VAULTS nor SUBSCRIPTIONS is set: no vault to sweep".to_owned());
            None
        }
    };
    let notice = health::send(dispatcher, report.as_ref(), set_aside).await;
    let health_notice = notice.as_str();
    logs.push(format!("health notice: {health_notice}"));
    for line in &logs {
        tracing::info!("{line}");
    }
    let failed = report.as_ref().is_some_and(SweepReport::failed) || notice == Notice::Failed;
    let response = TimerResponse {
        outputs: Map::new(),
        logs,
        return_value: TimerResult {
            sweep: report,
            health_notice,
        },
    };
    Ok((response, failed))
}
