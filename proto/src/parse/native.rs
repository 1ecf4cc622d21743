//! Native verbs: `job.*`, `hb`, `worker.stop`, `http`, `hello` (PROTOCOL.md section 3).

use super::{err, number};
use crate::MAX_NAME_LEN;
use crate::error::{ErrorKind, ParseError};
use crate::line::{
    Heartbeat, Hello, Http, HttpStatus, JobEnd, JobProgress, JobSkip, JobStart, Line, WorkerStop,
};

/// Up to four positional arguments (`http` has the most) and the `key=value` fields.
struct Args<'a> {
    positional: [&'a str; 4],
    count: usize,
    fields: &'a str,
}

impl<'a> Args<'a> {
    fn split(rest: &'a str) -> Result<Args<'a>, ParseError> {
        let mut args = Args {
            positional: [""; 4],
            count: 0,
            fields: "",
        };
        let mut tokens = rest.split([' ', '\t']).filter(|t| !t.is_empty());
        let mut fields_start = None;
        for token in tokens.by_ref() {
            if token.contains('=') {
                // Offsets within `rest`: tokens are subslices of it.
                fields_start = Some(token.as_ptr() as usize - rest.as_ptr() as usize);
                break;
            }
            if args.count == args.positional.len() {
                return Err(err(ErrorKind::Malformed, "too many arguments"));
            }
            args.positional[args.count] = token;
            args.count += 1;
        }
        if let Some(start) = fields_start {
            args.fields = &rest[start..];
            if args
                .fields
                .split([' ', '\t'])
                .any(|t| !t.is_empty() && !t.contains('='))
            {
                return Err(err(
                    ErrorKind::Malformed,
                    "argument after a key=value field",
                ));
            }
        }
        Ok(args)
    }

    fn get(&self, index: usize) -> Option<&'a str> {
        (index < self.count).then(|| self.positional[index])
    }

    fn require(&self, index: usize, what: &'static str) -> Result<&'a str, ParseError> {
        self.get(index).ok_or(err(ErrorKind::MissingField, what))
    }

    fn at_most(&self, count: usize) -> Result<(), ParseError> {
        if self.count > count {
            return Err(err(ErrorKind::Malformed, "too many arguments"));
        }
        Ok(())
    }

    /// Visits each `key=value` field. Later fields override earlier ones.
    fn fields(
        &self,
        mut visit: impl FnMut(&'a str, &'a str) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        for field in self.fields.split([' ', '\t']).filter(|t| !t.is_empty()) {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            visit(key, value)?;
        }
        Ok(())
    }
}

pub(super) fn native<'a>(verb: &'a str, rest: &'a str) -> Result<Line<'a>, ParseError> {
    let args = Args::split(rest)?;
    match verb {
        "job.start" => job_start(&args).map(Line::JobStart),
        "job.ok" => job_end(&args, false).map(Line::JobOk),
        "job.error" => job_end(&args, true).map(Line::JobError),
        "job.skip" => job_skip(&args).map(Line::JobSkip),
        "job.progress" => job_progress(&args).map(Line::JobProgress),
        "hb" => heartbeat(&args).map(Line::Heartbeat),
        "worker.stop" => worker_stop(&args).map(Line::WorkerStop),
        "http" => http(&args).map(Line::Http),
        "hello" => hello(&args).map(Line::Hello),
        _ if is_verb_shaped(verb) => Err(err(ErrorKind::UnknownVerb, "unknown verb")),
        _ => Err(err(
            ErrorKind::Malformed,
            "neither a native verb nor a statsd line",
        )),
    }
}

/// Lower-case words joined by dots: what a future verb would look like.
fn is_verb_shaped(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 32
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
}

fn job_start<'a>(args: &Args<'a>) -> Result<JobStart<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = JobStart {
        job: name(args.require(0, "job.start needs a job name")?)?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn job_end<'a>(args: &Args<'a>, error: bool) -> Result<JobEnd<'a>, ParseError> {
    args.at_most(2)?;
    let missing = if error {
        "job.error needs a job name"
    } else {
        "job.ok needs a job name"
    };
    let mut line = JobEnd {
        job: name(args.require(0, missing)?)?,
        seconds: args.get(1).map(seconds).transpose()?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            "reason" => line.reason = Some(token(value)?),
            "exit" => line.exit = Some(exit_code(value)?),
            "signal" if error => line.signal = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn job_skip<'a>(args: &Args<'a>) -> Result<JobSkip<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = JobSkip {
        job: name(args.require(0, "job.skip needs a job name")?)?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            "reason" => line.reason = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn job_progress<'a>(args: &Args<'a>) -> Result<JobProgress<'a>, ParseError> {
    args.at_most(2)?;
    let mut line = JobProgress {
        job: name(args.require(0, "job.progress needs a job name")?)?,
        amount: args.get(1).map(non_negative).transpose()?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn heartbeat<'a>(args: &Args<'a>) -> Result<Heartbeat<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = Heartbeat {
        worker: name(args.require(0, "hb needs a worker name")?)?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "ttl" => line.ttl = Some(ttl(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn worker_stop<'a>(args: &Args<'a>) -> Result<WorkerStop<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = WorkerStop {
        worker: name(args.require(0, "worker.stop needs a worker name")?)?,
        ..Default::default()
    };
    args.fields(|_, _| {
        line.unknown_fields = line.unknown_fields.saturating_add(1);
        Ok(())
    })?;
    Ok(line)
}

fn http<'a>(args: &Args<'a>) -> Result<Http<'a>, ParseError> {
    let mut line = Http {
        service: name(args.require(0, "http needs a service")?)?,
        endpoint: name(args.require(1, "http needs an endpoint")?)?,
        status: http_status(args.require(2, "http needs a status")?)?,
        seconds: args.get(3).map(seconds).transpose()?,
        unknown_fields: 0,
    };
    args.fields(|_, _| {
        line.unknown_fields = line.unknown_fields.saturating_add(1);
        Ok(())
    })?;
    Ok(line)
}

fn hello<'a>(args: &Args<'a>) -> Result<Hello<'a>, ParseError> {
    args.at_most(0)?;
    let mut app = None;
    let mut line = Hello::default();
    args.fields(|key, value| {
        match key {
            "app" => app = Some(name(value)?),
            "pid" => {
                line.pid = Some(
                    value
                        .parse()
                        .map_err(|_| err(ErrorKind::InvalidField, "pid= must be a process id"))?,
                )
            }
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    line.app = app.ok_or(err(ErrorKind::MissingField, "hello needs app=<name>"))?;
    Ok(line)
}

/// `name`: 1–128 bytes of `[A-Za-z0-9_.:/-]`.
pub(crate) fn name(text: &str) -> Result<&str, ParseError> {
    if is_name(text) {
        Ok(text)
    } else if text.is_empty() || text.len() > MAX_NAME_LEN {
        Err(err(ErrorKind::InvalidName, "a name is 1 to 128 characters"))
    } else {
        Err(err(
            ErrorKind::InvalidName,
            "a name may only hold A-Z a-z 0-9 _ . : / -",
        ))
    }
}

/// Whether `text` obeys the `name` rule.
pub fn is_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_NAME_LEN && text.bytes().all(is_name_byte)
}

#[inline]
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-')
}

/// `token` (ids, reasons, signals): the `name` rule, reported as a bad field.
fn token(text: &str) -> Result<&str, ParseError> {
    if is_name(text) {
        Ok(text)
    } else {
        Err(err(
            ErrorKind::InvalidField,
            "a field value is 1 to 128 characters of A-Z a-z 0-9 _ . : / -",
        ))
    }
}

/// `seconds`: a finite, non-negative number.
fn seconds(text: &str) -> Result<f64, ParseError> {
    non_negative(text)
}

fn non_negative(text: &str) -> Result<f64, ParseError> {
    let value = number(text)?;
    if value < 0.0 {
        return Err(err(
            ErrorKind::InvalidValue,
            "a duration or amount cannot be negative",
        ));
    }
    Ok(value)
}

fn ttl(text: &str) -> Result<f64, ParseError> {
    match number(text) {
        Ok(value) if value > 0.0 => Ok(value),
        _ => Err(err(
            ErrorKind::InvalidField,
            "ttl= must be a positive number of seconds",
        )),
    }
}

fn exit_code(text: &str) -> Result<i32, ParseError> {
    text.parse().map_err(|_| {
        err(
            ErrorKind::InvalidField,
            "exit= must be an integer exit code",
        )
    })
}

fn http_status(text: &str) -> Result<HttpStatus, ParseError> {
    match text {
        "network" => Ok(HttpStatus::Network),
        "timeout" => Ok(HttpStatus::Timeout),
        _ => match text.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) && text.len() == 3 => {
                Ok(HttpStatus::Code(code))
            }
            _ => Err(err(
                ErrorKind::InvalidValue,
                "status is 100-599, network or timeout",
            )),
        },
    }
}
