from . import test_access
from . import test_staging_callback
from . import test_staging_database
from . import test_staging_environment
from . import test_staging_forms
from . import test_staging_job
from . import test_staging_routes
from . import test_staging_run
