// React bindings for the stores that live outside React.
import { createContext, useContext, useRef, useSyncExternalStore } from 'react';
import type { ConsoleController, UiState } from './controller.js';
import type { ClusterSnapshot, ClusterStore } from './store.js';

export const StoreContext = createContext<ClusterStore | undefined>(undefined);
export const ControllerContext = createContext<ConsoleController | undefined>(undefined);

/**
 * A slice of the published cluster snapshot. The selector may derive new objects: its result
 * is cached per snapshot, so React sees a stable value until the store publishes again.
 */
export function useStore<T>(selector: (s: ClusterSnapshot) => T): T {
  const store = useContext(StoreContext);
  if (store === undefined) throw new Error('useStore needs a <StoreContext.Provider>');
  const cache = useRef<{ snap: ClusterSnapshot; value: T } | undefined>(undefined);
  const get = (): T => {
    const snap = store.getSnapshot();
    if (cache.current?.snap !== snap) cache.current = { snap, value: selector(snap) };
    return cache.current.value;
  };
  return useSyncExternalStore(store.subscribe, get, get);
}

export function useUi(): UiState {
  const c = useContext(ControllerContext);
  if (c === undefined) throw new Error('useUi needs a <ControllerContext.Provider>');
  return useSyncExternalStore(c.subscribe, c.getSnapshot, c.getSnapshot);
}

export function useController(): ConsoleController {
  const c = useContext(ControllerContext);
  if (c === undefined) throw new Error('useController needs a <ControllerContext.Provider>');
  return c;
}
