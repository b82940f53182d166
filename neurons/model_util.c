/* model_util.c — checks the model files share (model_util.h). Kept out of
 * registry.c, which lists the models: a model must not call its registry. */
#include "neurons/model_util.h"

int nesim_check_reset(const nesim_dyn *d, nesim_error *err)
{
    if (!(d->v_reset < d->v_thresh))
        return nesim_fail(err, NESIM_EINVAL, "v_reset (%g) must be below v_thresh (%g)", d->v_reset, d->v_thresh);
    return NESIM_OK;
}
