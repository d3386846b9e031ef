//! `p2a-train`: runs one trainer at a time and streams its events to the UI;
//! `p2a-train-events` forwards them (sample images become [`Rgba8`] on the way).
//!
//! Every start is answered: by the trainer's own events, or — when the run cannot
//! start or the thread panics — by [`WorkerEvent::TrainingFailed`]; the thread's end
//! is always [`WorkerEvent::TrainingClosed`].

use std::path::Path;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::EventSink;
use super::protocol::{Refusal, Rgba8, SampleSet, TrainingRequest, WorkerError, WorkerEvent};
use crate::device::DeviceSetting;
use crate::train::run_dir::{SampleGrid, read_history};
use crate::train::{Duration, TrainCommand, TrainConfig, TrainEvent, Trainer};

/// A running training thread.
struct TrainingHandle {
    commands: Sender<TrainCommand>,
    thread: JoinHandle<()>,
}

/// The training thread, when one runs.
#[derive(Default)]
pub(crate) struct TrainingSlot {
    running: Option<TrainingHandle>,
}

impl TrainingSlot {
    /// Whether a training thread is alive.
    pub(crate) fn is_active(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|t| !t.thread.is_finished())
    }

    /// Serves a request: starts a run, or passes a command to the running one.
    pub(crate) fn send(&mut self, request: TrainingRequest, sink: &EventSink) {
        match request {
            TrainingRequest::Control(command) => {
                let delivered = self
                    .running
                    .as_ref()
                    .filter(|_| self.is_active())
                    .is_some_and(|t| t.commands.send(command).is_ok());
                if !delivered {
                    sink.send(WorkerEvent::Refused(Refusal::NoActiveRun));
                }
            }
            TrainingRequest::Start {
                config,
                run_dir,
                device,
            } => self.spawn(sink, move |commands, events, sink| {
                start(*config, &run_dir, &device, commands, events, sink)
            }),
            TrainingRequest::Resume {
                run_dir,
                device,
                duration,
            } => self.spawn(sink, move |commands, events, sink| {
                resume(&run_dir, &device, duration, commands, events, sink)
            }),
        }
    }

    fn spawn(
        &mut self,
        sink: &EventSink,
        body: impl FnOnce(
            &Receiver<TrainCommand>,
            Sender<TrainEvent>,
            &EventSink,
        ) -> Result<(), WorkerError>
        + Send
        + 'static,
    ) {
        if self.is_active() {
            sink.send(WorkerEvent::Refused(Refusal::TrainingActive));
            return;
        }
        let (commands, commands_rx) = unbounded();
        let (events_tx, events_rx) = unbounded::<TrainEvent>();
        let forward_sink = sink.clone();
        // The forwarder ends when every sender of trainer events is gone, i.e. after
        // the training thread below has finished: its TrainingClosed comes last.
        let forwarder = std::thread::Builder::new()
            .name("p2a-train-events".into())
            .spawn(move || forward(&events_rx, &forward_sink));
        if let Err(e) = forwarder {
            sink.send(WorkerEvent::TrainingFailed(WorkerError::Spawn(
                e.to_string(),
            )));
            sink.send(WorkerEvent::TrainingClosed);
            return;
        }
        let thread_sink = sink.clone();
        let thread = std::thread::Builder::new()
            .name("p2a-train".into())
            .spawn(move || {
                // Held until the failure (if any) is sent, so TrainingClosed, which
                // the forwarder sends when the last event sender is gone, comes after.
                let hold_open = events_tx.clone();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    body(&commands_rx, events_tx, &thread_sink)
                }));
                let failure = match outcome {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(payload) => Some(WorkerError::crashed("training", payload.as_ref())),
                };
                if let Some(e) = failure {
                    thread_sink.send(WorkerEvent::TrainingFailed(e));
                }
                drop(hold_open);
            });
        match thread {
            Ok(thread) => self.running = Some(TrainingHandle { commands, thread }),
            Err(e) => {
                // The forwarder ends by itself: its channel's sender died with the closure.
                sink.send(WorkerEvent::TrainingFailed(WorkerError::Spawn(
                    e.to_string(),
                )));
            }
        }
    }
}

/// Forwards trainer events to the UI until the trainer's channel closes.
fn forward(events: &Receiver<TrainEvent>, sink: &EventSink) {
    for event in events {
        sink.send(match event {
            TrainEvent::Samples {
                step,
                outputs,
                inputs,
                ..
            } => WorkerEvent::Samples(SampleSet {
                step,
                inputs: inputs.iter().map(Rgba8::from_sample).collect(),
                outputs: outputs.iter().map(Rgba8::from_sample).collect(),
            }),
            other => WorkerEvent::Train(other),
        });
    }
    sink.send(WorkerEvent::TrainingClosed);
}

fn announce_device(device: &DeviceSetting, sink: &EventSink) -> crate::device::SelectedDevice {
    let selected = device.create();
    sink.send(WorkerEvent::TrainingDevice {
        description: selected.description.clone(),
        fallback: selected.fallback_reason.clone(),
    });
    selected
}

fn start(
    config: TrainConfig,
    run_dir: &Path,
    device: &DeviceSetting,
    commands: &Receiver<TrainCommand>,
    events: Sender<TrainEvent>,
    sink: &EventSink,
) -> Result<(), WorkerError> {
    let selected = announce_device(device, sink);
    let trainer = Trainer::new(config, run_dir, &selected, events)?;
    trainer.run(commands);
    Ok(())
}

fn resume(
    run_dir: &Path,
    device: &DeviceSetting,
    duration: Option<Duration>,
    commands: &Receiver<TrainCommand>,
    events: Sender<TrainEvent>,
    sink: &EventSink,
) -> Result<(), WorkerError> {
    let mut history = read_history(run_dir)?;
    let samples = std::mem::take(&mut history.samples)
        .iter()
        .map(sample_set)
        .collect();
    sink.send(WorkerEvent::RunRestored {
        history: Box::new(history),
        samples,
    });
    let selected = announce_device(device, sink);
    let trainer = Trainer::resume(run_dir, &selected, events, duration)?;
    trainer.run(commands);
    Ok(())
}

fn sample_set(grid: &SampleGrid) -> SampleSet {
    SampleSet {
        step: grid.step,
        inputs: grid.inputs.iter().map(Rgba8::from_sample).collect(),
        outputs: grid.outputs.iter().map(Rgba8::from_sample).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A training command with no run active is answered, not dropped.
    #[test]
    fn a_command_without_a_run_is_refused() {
        let (sink, events) = EventSink::channel();
        let mut slot = TrainingSlot::default();
        slot.send(TrainingRequest::Control(TrainCommand::Pause), &sink);
        assert!(matches!(
            events.try_recv(),
            Ok(WorkerEvent::Refused(Refusal::NoActiveRun))
        ));
    }

    /// A run that cannot start (no such run folder) answers with an error and
    /// closes; the slot is free again.
    #[test]
    fn a_failed_resume_is_answered_and_closes() {
        let (sink, events) = EventSink::channel();
        let mut slot = TrainingSlot::default();
        let dir = tempfile::tempdir().unwrap();
        slot.send(
            TrainingRequest::Resume {
                run_dir: dir.path().join("missing"),
                device: DeviceSetting::Cpu,
                duration: None,
            },
            &sink,
        );
        let mut failed = false;
        loop {
            match events.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(WorkerEvent::TrainingFailed(_)) => failed = true,
                Ok(WorkerEvent::TrainingClosed) => break,
                Ok(_) => {}
                Err(e) => panic!("no answer: {e}"),
            }
        }
        assert!(failed);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!slot.is_active());
    }
}
