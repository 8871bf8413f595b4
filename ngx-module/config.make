# Adds the make rule that builds the gatelog crate with cargo (see config and auto/cargo).
# NGINX's auto/make sources this file after writing objs/Makefile's module rules.

gatelog_cargo_make
