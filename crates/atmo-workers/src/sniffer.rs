//! sniffer
