//! `banter-net`: the address policy shared by the tools that fetch from the network — banter-scrape's
//! pages and redirects, and the Hub client's redirects ([`address`]).

pub mod address;
