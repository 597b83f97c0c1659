//! sagascope's metrics over OTLP without a second set of calls: the
//! `metrics` facade (already used by the ingest, the re-drive, the HTTP
//! layer and `/metrics`) gets a recorder that hands every update to the
//! Prometheus recorder *and* to an OpenTelemetry instrument of the same
//! name, with the labels as attributes. Counters become OTel counters,
//! gauges OTel gauges, histograms OTel histograms (the `*_seconds` ones
//! with the Prometheus buckets). The instruments come from the global
//! meter provider, so `telemetry::init` must run before the first update
//! (it does, in `main`); without OTLP export they are the SDK's cheap
//! no-reader instruments.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use opentelemetry::metrics::{
    Counter as OtelCounter, Gauge as OtelGauge, Histogram as OtelHistogram, Meter,
};
use opentelemetry::KeyValue;

/// The instrumentation scope of the bridged instruments.
const METER_NAME: &str = "sagascope";

/// A `metrics` recorder over `inner` (Prometheus) that also records to
/// OpenTelemetry.
pub struct MetricsBridge<R> {
    inner: R,
    seconds_buckets: Vec<f64>,
    instruments: Mutex<Instruments>,
}

#[derive(Default)]
struct Instruments {
    meter: Option<Meter>,
    descriptions: HashMap<String, (Option<Unit>, SharedString)>,
    counters: HashMap<String, OtelCounter<u64>>,
    gauges: HashMap<String, OtelGauge<f64>>,
    histograms: HashMap<String, OtelHistogram<f64>>,
    /// Each gauge series' value, for `increment`/`decrement` (OTel gauges
    /// only take values).
    gauge_values: HashMap<Key, Arc<AtomicU64>>,
}

impl<R: Recorder> MetricsBridge<R> {
    /// `seconds_buckets`: histogram bounds of the `*_seconds` series, as
    /// Prometheus has them.
    pub fn new(inner: R, seconds_buckets: &[f64]) -> MetricsBridge<R> {
        MetricsBridge {
            inner,
            seconds_buckets: seconds_buckets.to_vec(),
            instruments: Mutex::new(Instruments::default()),
        }
    }

    fn instruments(&self) -> MutexGuard<'_, Instruments> {
        self.instruments
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.instruments()
            .descriptions
            .insert(key.as_str().to_string(), (unit, description));
    }
}

impl Instruments {
    fn meter(&mut self) -> Meter {
        self.meter
            .get_or_insert_with(|| opentelemetry::global::meter(METER_NAME))
            .clone()
    }

    /// Description and OTel unit (UCUM) of `name`.
    fn about(&self, name: &str) -> (String, Option<&'static str>) {
        let (unit, description) = match self.descriptions.get(name) {
            Some((unit, description)) => (*unit, description.to_string()),
            None => (None, String::new()),
        };
        let unit = match unit {
            Some(Unit::Seconds) => Some("s"),
            Some(Unit::Milliseconds) => Some("ms"),
            Some(Unit::Bytes) => Some("By"),
            _ if name.ends_with("_seconds") => Some("s"),
            _ => None,
        };
        (description, unit)
    }

    fn counter(&mut self, name: &str) -> OtelCounter<u64> {
        if let Some(counter) = self.counters.get(name) {
            return counter.clone();
        }
        let (description, unit) = self.about(name);
        let meter = self.meter();
        let mut builder = meter
            .u64_counter(name.to_string())
            .with_description(description);
        if let Some(unit) = unit {
            builder = builder.with_unit(unit);
        }
        let counter = builder.build();
        self.counters.insert(name.to_string(), counter.clone());
        counter
    }

    fn gauge(&mut self, name: &str) -> OtelGauge<f64> {
        if let Some(gauge) = self.gauges.get(name) {
            return gauge.clone();
        }
        let (description, unit) = self.about(name);
        let meter = self.meter();
        let mut builder = meter
            .f64_gauge(name.to_string())
            .with_description(description);
        if let Some(unit) = unit {
            builder = builder.with_unit(unit);
        }
        let gauge = builder.build();
        self.gauges.insert(name.to_string(), gauge.clone());
        gauge
    }

    fn histogram(&mut self, name: &str, seconds_buckets: &[f64]) -> OtelHistogram<f64> {
        if let Some(histogram) = self.histograms.get(name) {
            return histogram.clone();
        }
        let (description, unit) = self.about(name);
        let meter = self.meter();
        let mut builder = meter
            .f64_histogram(name.to_string())
            .with_description(description);
        if let Some(unit) = unit {
            builder = builder.with_unit(unit);
        }
        if name.ends_with("_seconds") {
            builder = builder.with_boundaries(seconds_buckets.to_vec());
        }
        let histogram = builder.build();
        self.histograms.insert(name.to_string(), histogram.clone());
        histogram
    }
}

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|label| KeyValue::new(label.key().to_string(), label.value().to_string()))
        .collect()
}

impl<R: Recorder> Recorder for MetricsBridge<R> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.clone(), unit, description.clone());
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.clone(), unit, description.clone());
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(key.clone(), unit, description.clone());
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        let otel = self.instruments().counter(key.name());
        Counter::from_arc(Arc::new(BridgedCounter {
            prometheus: self.inner.register_counter(key, metadata),
            otel,
            attributes: attributes(key),
        }))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        let (otel, value) = {
            let mut instruments = self.instruments();
            let otel = instruments.gauge(key.name());
            let value = instruments
                .gauge_values
                .entry(key.clone())
                .or_insert_with(|| Arc::new(AtomicU64::new(0f64.to_bits())))
                .clone();
            (otel, value)
        };
        Gauge::from_arc(Arc::new(BridgedGauge {
            prometheus: self.inner.register_gauge(key, metadata),
            otel,
            value,
            attributes: attributes(key),
        }))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        let otel = self
            .instruments()
            .histogram(key.name(), &self.seconds_buckets);
        Histogram::from_arc(Arc::new(BridgedHistogram {
            prometheus: self.inner.register_histogram(key, metadata),
            otel,
            attributes: attributes(key),
        }))
    }
}

struct BridgedCounter {
    prometheus: Counter,
    otel: OtelCounter<u64>,
    attributes: Vec<KeyValue>,
}

impl CounterFn for BridgedCounter {
    fn increment(&self, value: u64) {
        self.prometheus.increment(value);
        self.otel.add(value, &self.attributes);
    }

    /// Prometheus only: an OTel counter takes increments, not totals.
    fn absolute(&self, value: u64) {
        self.prometheus.absolute(value);
    }
}

struct BridgedGauge {
    prometheus: Gauge,
    otel: OtelGauge<f64>,
    value: Arc<AtomicU64>,
    attributes: Vec<KeyValue>,
}

impl BridgedGauge {
    fn update(&self, change: impl Fn(f64) -> f64) {
        let mut now = 0.0;
        let _ = self
            .value
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                now = change(f64::from_bits(bits));
                Some(now.to_bits())
            });
        self.otel.record(now, &self.attributes);
    }
}

impl GaugeFn for BridgedGauge {
    fn increment(&self, value: f64) {
        self.prometheus.increment(value);
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.prometheus.decrement(value);
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.prometheus.set(value);
        self.update(|_| value);
    }
}

struct BridgedHistogram {
    prometheus: Histogram,
    otel: OtelHistogram<f64>,
    attributes: Vec<KeyValue>,
}

impl HistogramFn for BridgedHistogram {
    fn record(&self, value: f64) {
        self.prometheus.record(value);
        self.otel.record(value, &self.attributes);
    }
}
