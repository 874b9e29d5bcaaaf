//! Integration tests of the server: a real server on a random port, real models, real sled
//! (and a real PostgreSQL when `TEST_POSTGRES_URL` names one).

mod accounts_crash;
mod accounts_domain;
mod accounts_hooks;
mod accounts_staff;
mod answers;
mod api;
mod channels;
mod cli;
mod console;
mod console_browser;
mod dialogue;
mod identity;
mod multi_instance;
mod rest;
mod scenarios;
mod support;
mod whatsapp;
mod widget_browser;
