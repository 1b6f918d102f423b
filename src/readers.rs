//! Reader threads that feed a query, shared by every scan (VCF files, topics).
//!
//! A scan's work is a list of *units* (byte ranges of a file, a group of topic partitions),
//! dealt out to reader threads: unit `i` goes to reader `i % readers`. Each reader sends its
//! batches through a channel of a few slots (so memory stays bounded), marks the end of each
//! unit ([`Outlet::unit_done`]), and ends by saying why it stopped: it [`Ending::Finished`] its units, or it reached
//! the scan's limit ([`Ending::LimitReached`]), or it failed (an error, or a panic caught
//! here). [`ordered_stream`] reads the units back in order, so records come out in file order
//! while being decoded in parallel.
//!
//! A reader whose channel closes without one of those endings (it vanished) ends the query
//! with an error naming its unit: a scan never ends early without saying why.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use tokio::sync::mpsc;

/// Batches a reader may have decoded ahead of the consumer: enough to finish a typical unit
/// while the consumer drains the units before it.
pub const CHANNEL_BATCHES: usize = 4;

/// Why a reader stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every unit it was given was read to its end.
    Finished,
    /// It produced the rows the scan's limit asks for; the units after are not needed.
    LimitReached,
    /// The consumer went away (the query was dropped or cancelled); nobody is listening.
    Abandoned,
}

/// What a reader sends.
#[derive(Debug)]
enum Message {
    Batch(RecordBatch),
    UnitDone,
    End(Ending),
    Failed(DataFusionError),
}

/// Whether a reader should go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on reading.
    Continue,
    /// Stop: the consumer is gone.
    Abandoned,
}

/// The sending side of a reader, handed to its work.
#[derive(Debug)]
pub struct Outlet {
    tx: mpsc::Sender<Message>,
    /// What the reader is reading now, for the error when it panics.
    unit: RefCell<String>,
}

impl Outlet {
    /// Says which unit the reader reads from now on (`calls.vcf.gz bytes 0..1048576`): a panic
    /// is reported as that unit's failure.
    pub fn begin_unit(&self, unit: impl Into<String>) {
        *self.unit.borrow_mut() = unit.into();
    }

    /// Sends a batch, waiting while the channel is full; [`Flow::Abandoned`] when the
    /// consumer is gone.
    pub fn send(&self, batch: RecordBatch) -> Flow {
        self.put(Message::Batch(batch))
    }

    /// Marks the end of the current unit.
    pub fn unit_done(&self) -> Flow {
        self.put(Message::UnitDone)
    }

    /// Whether the consumer is gone (a reader waiting for input can check this).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    fn put(&self, message: Message) -> Flow {
        match self.tx.blocking_send(message) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Abandoned,
        }
    }
}

/// The receiving side of one reader thread.
#[derive(Debug)]
pub struct Reader {
    rx: mpsc::Receiver<Message>,
}

/// Starts a reader thread named `name` running `work`; its outcome (an [`Ending`], an error, or
/// a panic turned into an error naming the unit it was reading, first `target`) is sent last.
pub fn spawn<F>(name: String, target: String, work: F) -> Result<Reader>
where
    F: FnOnce(&Outlet) -> Result<Ending> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let outlet = Outlet {
                tx,
                unit: RefCell::new(target),
            };
            let last = match catch_unwind(AssertUnwindSafe(|| work(&outlet))) {
                Ok(Ok(ending)) => Message::End(ending),
                Ok(Err(e)) => Message::Failed(e),
                Err(panic) => Message::Failed(DataFusionError::Internal(format!(
                    "{}: reader failed: {}",
                    outlet.unit.borrow(),
                    panic_message(panic.as_ref())
                ))),
            };
            let _ = outlet.put(last);
        })
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Reader { rx })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// The consumer's side of ordered reading.
struct Ordered {
    readers: Vec<Reader>,
    /// What each unit is, for errors (`calls.vcf.gz bytes 0..1048576`).
    units: Vec<String>,
    unit: usize,
    done: bool,
    /// Dropped when the stream ends (or is dropped), e.g. to report the scan's warnings.
    on_end: Option<Box<dyn Send>>,
}

impl Ordered {
    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        if self.done {
            self.on_end = None;
            return None;
        }
        let n = self.readers.len();
        while self.unit < self.units.len() {
            let k = self.unit % n;
            match self.readers[k].rx.recv().await {
                Some(Message::Batch(batch)) => return Some(Ok(batch)),
                Some(Message::UnitDone) => self.unit += 1,
                Some(Message::End(Ending::LimitReached)) => break,
                Some(Message::End(Ending::Finished)) => {
                    // every unit ends with UnitDone: finishing while one is awaited loses it
                    return self.fail(DataFusionError::Internal(format!(
                        "{}: reader finished without reading this unit",
                        self.units[self.unit]
                    )));
                }
                Some(Message::End(Ending::Abandoned)) => {
                    return self.fail(DataFusionError::Internal(format!(
                        "{}: reader stopped although the query still reads",
                        self.units[self.unit]
                    )));
                }
                Some(Message::Failed(e)) => return self.fail(e),
                None => {
                    return self.fail(DataFusionError::Internal(format!(
                        "{}: reader stopped without finishing, failing or reaching the limit",
                        self.units[self.unit]
                    )));
                }
            }
        }
        self.done = true;
        self.on_end = None;
        None
    }

    fn fail(&mut self, e: DataFusionError) -> Option<Result<RecordBatch>> {
        self.done = true;
        self.on_end = None;
        Some(Err(e))
    }
}

/// The batches of `readers` in unit order: unit `i` (described by `units[i]`) is read by
/// reader `i % readers.len()`. The stream ends after the last unit, or when a reader reached
/// the limit; it fails when a reader fails or vanishes. `on_end` is dropped when the stream
/// ends or is dropped.
pub fn ordered_stream(
    schema: SchemaRef,
    readers: Vec<Reader>,
    units: Vec<String>,
    on_end: Option<Box<dyn Send>>,
) -> SendableRecordBatchStream {
    let state = Ordered {
        done: readers.is_empty(),
        readers,
        units,
        unit: 0,
        on_end,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        st.next().await.map(|item| (item, st))
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

/// Faults injected into readers by tests: a reader whose target contains `target` panics
/// when it is about to send batch number `after_batches` (counting from 0).
#[derive(Debug, Clone)]
struct Fault {
    target: String,
    after_batches: usize,
}

static FAULTS_ARMED: AtomicBool = AtomicBool::new(false);
static FAULTS: Mutex<Vec<Fault>> = Mutex::new(Vec::new());

/// For tests: makes readers of every target containing `target` (a file name, a topic) panic
/// before sending their batch number `after_batches`, as a bug deep inside a scan would.
/// Costs one atomic load per batch when no fault is set.
#[doc(hidden)]
pub fn inject_panic(target: &str, after_batches: usize) {
    let mut faults = FAULTS.lock().unwrap_or_else(|p| p.into_inner());
    faults.push(Fault {
        target: target.to_string(),
        after_batches,
    });
    FAULTS_ARMED.store(true, Ordering::Release);
}

/// The fault point readers pass before sending batch number `batch` of `target` (computed
/// only when a fault is set).
pub fn fault_point(target: impl FnOnce() -> String, batch: usize) {
    if !FAULTS_ARMED.load(Ordering::Acquire) {
        return;
    }
    let target = target();
    let hit = FAULTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|f| target.contains(&f.target) && batch >= f.after_batches);
    if hit {
        panic!("fault injected into the reader of {target} at batch {batch}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use futures::StreamExt;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
    }

    fn batch(n: i64) -> RecordBatch {
        RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(vec![n]))]).unwrap()
    }

    /// Readers over `units` units (unit `u` holds the single value `u`) with `work` deciding
    /// what happens in each reader after the units listed.
    async fn collect(readers: usize, units: usize, fail_unit: Option<usize>) -> Result<Vec<i64>> {
        let mut rs = Vec::new();
        for k in 0..readers {
            let mine: Vec<usize> = (k..units).step_by(readers).collect();
            rs.push(
                spawn(format!("r{k}"), format!("unit set {k}"), move |out| {
                    for u in mine {
                        if Some(u) == fail_unit {
                            panic!("broken unit {u}");
                        }
                        if out.send(batch(u as i64)) == Flow::Abandoned
                            || out.unit_done() == Flow::Abandoned
                        {
                            return Ok(Ending::Abandoned);
                        }
                    }
                    Ok(Ending::Finished)
                })
                .unwrap(),
            );
        }
        let names = (0..units).map(|u| format!("unit {u}")).collect();
        let mut stream = ordered_stream(schema(), rs, names, None);
        let mut out = Vec::new();
        while let Some(b) = stream.next().await {
            let b = b?;
            out.push(
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .value(0),
            );
        }
        Ok(out)
    }

    #[tokio::test]
    async fn units_come_back_in_order() {
        assert_eq!(
            collect(3, 10, None).await.unwrap(),
            (0..10).collect::<Vec<_>>()
        );
        assert_eq!(collect(1, 2, None).await.unwrap(), vec![0, 1]);
        assert!(collect(2, 0, None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_panicking_reader_is_an_error_naming_its_target_not_an_early_end() {
        let e = collect(3, 10, Some(7)).await.unwrap_err().to_string();
        assert!(
            e.contains("unit set 1: reader failed: broken unit 7"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_reader_that_vanishes_is_an_error() {
        // a sender dropped without an ending, as a thread that dies without unwinding would
        let (tx, rx) = mpsc::channel(1);
        tx.send(Message::Batch(batch(0))).await.unwrap();
        drop(tx);
        let mut stream = ordered_stream(
            schema(),
            vec![Reader { rx }],
            vec!["f.vcf bytes 0..10".into()],
            None,
        );
        assert!(stream.next().await.unwrap().is_ok());
        let e = stream.next().await.unwrap().unwrap_err().to_string();
        assert!(
            e.contains("f.vcf bytes 0..10: reader stopped without finishing"),
            "{e}"
        );
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_reader_that_finishes_early_is_an_error() {
        let early = spawn("r".into(), "t".into(), |out| {
            out.send(batch(0));
            out.unit_done();
            Ok(Ending::Finished)
        })
        .unwrap();
        let other = spawn("s".into(), "t".into(), |out| {
            out.send(batch(1));
            out.unit_done();
            out.send(batch(3));
            out.unit_done();
            Ok(Ending::Finished)
        })
        .unwrap();
        let names = (0..4).map(|u| format!("unit {u}")).collect();
        let mut stream = ordered_stream(schema(), vec![early, other], names, None);
        let mut errors = Vec::new();
        while let Some(b) = stream.next().await {
            if let Err(e) = b {
                errors.push(e.to_string());
            }
        }
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("unit 2: reader finished without reading this unit"),
            "{errors:?}"
        );
    }

    #[tokio::test]
    async fn the_limit_ends_the_stream_quietly() {
        let r = spawn("r".into(), "t".into(), |out| {
            out.send(batch(0));
            Ok(Ending::LimitReached)
        })
        .unwrap();
        let ended = Arc::new(());
        let mut stream = ordered_stream(
            schema(),
            vec![r],
            vec!["u0".into(), "u1".into()],
            Some(Box::new(Arc::clone(&ended))),
        );
        assert!(stream.next().await.unwrap().is_ok());
        assert_eq!(Arc::strong_count(&ended), 2);
        assert!(stream.next().await.is_none());
        // the end is signalled when the stream ends, not when it is dropped later
        assert_eq!(Arc::strong_count(&ended), 1);
    }

    #[test]
    fn injected_faults_hit_only_their_target() {
        inject_panic("faulty-target-xyz", 2);
        fault_point(|| "other".into(), 5);
        fault_point(|| "a/faulty-target-xyz.vcf".into(), 1);
        let hit = catch_unwind(|| fault_point(|| "a/faulty-target-xyz.vcf".into(), 2));
        assert!(hit.is_err());
    }
}
