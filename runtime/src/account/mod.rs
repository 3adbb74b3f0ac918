//! The accounting rules, below everything that records: token usage
//! ([`usage`]), prices and the cost of a call ([`cost`]), budgets and their
//! windows ([`budget`]), and what one call contributes to the totals of the
//! agents and workflows above it ([`accounting`]). Pure rules over values;
//! the frame ([`crate::base::frame`]) carries their results.

pub(crate) mod accounting;
pub(crate) mod budget;
pub(crate) mod cost;
pub(crate) mod usage;
