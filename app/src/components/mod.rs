//! Reusable pieces of the pages.

pub mod charts;
pub mod compensation_card;
pub mod dead_letter;
pub mod dead_letter_actions;
pub mod dead_letter_job;
pub mod dead_letter_timeline;
pub mod flow_diagram;
pub mod ids;
pub mod json_view;
pub mod live_stream;
pub mod metric_cards;
pub mod saga_table;
pub mod span_waterfall;
pub mod states;
pub mod status_badge;
pub mod store_unavailable_banner;
pub mod time;
pub mod timeline;
pub mod top_bar;
pub mod trace_axis;
