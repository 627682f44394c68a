-- testbed: website is NOT installed in the fixture database, so a
-- neutralizer must not run this script. If it does, the marker below shows it.
INSERT INTO ir_config_parameter (key, value)
VALUES ('numikube_fixture.uninstalled_script_ran', 'website')
    ON CONFLICT (key) DO UPDATE SET value = 'website';
