import time, sys, numpy as np, torch
torch.set_num_threads(2)
from engine.data import *
from engine.graph import *
from engine.features import *
from sklearn.decomposition import PCA
xtr,ytr,xte,yte=load_dataset('mnist')
X=to_float(np.concatenate([xtr,xte]))
Y=np.concatenate([ytr,yte])
t=time.time(); Xd=deskew(X); print('deskew',time.time()-t)
def run(feat,name,k=10):
    t=time.time(); idx,dist=knn(feat,k); t1=time.time()-t; W=knn_graph(idx,dist,k_scale=k); tg=time.time()-t
    # knn accuracy check (fully supervised sanity): 
    for seed in [0,1,2]:
        lab=sample_labels(ytr,10,seed)
        for meth,f in [('poisson',poisson_learning),('spread',label_spreading)]:
            t=time.time(); u=f(W,lab,ytr[lab],10); tm=time.time()-t
            pred=u.argmax(1)
            print(f'{name} k={k} {meth} seed={seed} knn={t1:.1f} graph={tg:.1f}s prop={tm:.1f}s test={np.mean(pred[60000:]==yte):.4f} all={np.mean(pred==Y):.4f}',flush=True)
for d in [30,50,100]:
    P=PCA(d,random_state=0).fit_transform(Xd.reshape(70000,-1))
    run(P,f'deskew-pca{d}')
