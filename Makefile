# `sam build` builds the rules layer with this target (template.yaml: RulesLayer,
# BuildMethod makefile): every rule file is linted and compiled into one bundle that the
# function loads at cold start several times faster than the YAML. The CLI is built
# without its embedded rules, so editing a rule recompiles no Rust.
build-RulesLayer:
	cargo run --quiet --release --no-default-features --bin trailwatch -- \
		rules compile rules --output "$(ARTIFACTS_DIR)/rules.bundle.json"
